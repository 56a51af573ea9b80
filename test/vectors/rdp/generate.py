#!/usr/bin/env python3
"""Generate the RDP test vectors in this folder (rdp-grid.json, epsilon.json, special.json).

Independent of the TypeScript implementation and of any DP library: Python 3 standard library only
(`decimal` at 50 significant digits, `fractions` for Bernoulli numbers). Every input is first turned into
the exact value of the IEEE double the TypeScript code receives (Decimal(float)), so a vector is the exact
answer, correctly rounded to a double, for exactly those inputs.

What is computed (see README.md for the formulas):
  * integer orders: the exact binomial sum
        A_n = sum_k C(n,k) (1-q)^(n-k) q^k exp((k^2-k)/(2 sigma^2));
  * fractional orders: the defining integral
        A_a = Int phi(u) (1 - q + q exp(u/sigma - 1/(2 sigma^2)))^a du,  phi = N(0,1) density,
    by the trapezoidal rule on the whole line (exponentially convergent for this analytic, Gaussian-tailed
    integrand); each integral is checked against the rule with twice the step (must agree to 1e-30);
  * as cross-checks: the same integral for integer orders (vs the exact sum), and the two-series expansion
    of Mironov, Talwar & Zhang (2019) section 3.3 -- the formula TF-Privacy, Opacus and Shoal implement --
    evaluated in Decimal with a Decimal erfc, for every fractional grid point;
  * RDP(a) = steps * ln(A_a) / (a - 1);  eps = min_a RDP(a) + ln((a-1)/a) - (ln delta + ln a)/(a-1).

Run:  python3 test/vectors/rdp/generate.py      (about a minute or two; prints its cross-checks)
"""

import decimal
import json
import math
import os
import sys
import time
from decimal import Decimal as D
from fractions import Fraction

PREC = 50
decimal.setcontext(decimal.Context(prec=PREC, Emax=10**15, Emin=-(10**15)))
HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------------------------------
# Constants and elementary functions in Decimal
# ---------------------------------------------------------------------------------------------------------

def _atan_inv(n):
    """atan(1/n) by its Taylor series."""
    x = D(1) / n
    x2 = x * x
    s = t = x
    k = 1
    eps = D(10) ** -(decimal.getcontext().prec + 5)
    while True:
        t *= -x2
        k += 2
        d = t / k
        if abs(d) < eps:
            return s
        s += d


with decimal.localcontext() as _c:
    _c.prec += 10
    PI = +(16 * _atan_inv(5) - 4 * _atan_inv(239))  # Machin's formula
PI = +PI
SQRT_PI = PI.sqrt()
SQRT_2PI = (2 * PI).sqrt()
LN2 = D(2).ln()


def sin_dec(x):
    """sin(x) by its Taylor series after reduction to [-pi, pi]."""
    with decimal.localcontext() as c:
        c.prec += 10
        x = x - 2 * PI * (x / (2 * PI)).to_integral_value()
        t = s = x
        n = 1
        while True:
            t *= -x * x / ((n + 1) * (n + 2))
            n += 2
            if abs(t) < D(10) ** -(c.prec + 2):
                break
            s += t
    return +s


def erf_series(x):
    """erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))  (positive terms, x >= 0)."""
    x2 = x * x
    t = s = x
    n = 0
    tol = D(10) ** -(decimal.getcontext().prec + 2)
    while True:
        n += 1
        t = t * 2 * x2 / (2 * n + 1)
        s += t
        if t <= s * tol:
            break
    return 2 / SQRT_PI * (-x2).exp() * s


def erfc_cf_scaled(x, n):
    """1/t with t = x + (1/2)/(x + 1/(x + (3/2)/(...))) (n levels): erfc(x) = e^(-x^2)/sqrt(pi) * (1/t)."""
    t = x
    for k in range(n, 0, -1):
        t = x + D(k) / 2 / t
    return 1 / t


def _cf_converged(x):
    n = 16
    a = erfc_cf_scaled(x, n)
    while True:
        n *= 2
        b = erfc_cf_scaled(x, n)
        if abs(a - b) <= abs(b) * D(10) ** -(PREC + 5):
            return b
        a = b


def log_erfc(x):
    """ln(erfc(x)) for any real x, to ~PREC digits (never underflows)."""
    x = D(x)
    if x < 0:
        return (2 - log_erfc(-x).exp()).ln()
    if x < 8:
        # erfc = 1 - erf loses up to 29 digits at x = 8: work with 45 extra digits.
        with decimal.localcontext() as c:
            c.prec += 45
            v = (1 - erf_series(x)).ln()
        return +v
    with decimal.localcontext() as c:
        c.prec += 10
        v = -(x * x) - SQRT_PI.ln() + _cf_converged(x).ln()
    return +v


def erfc(x):
    return log_erfc(x).exp()


def bernoulli_b2k(kmax):
    """B_2, B_4, ..., B_2kmax as Fractions (Akiyama-Tanigawa algorithm)."""
    m = 2 * kmax
    a = [Fraction(0)] * (m + 1)
    out = []
    for i in range(m + 1):
        a[i] = Fraction(1, i + 1)
        for j in range(i, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        if i >= 2 and i % 2 == 0:
            out.append(a[0])
    return out


B2K = bernoulli_b2k(30)


def lgamma_dec(x):
    """ln|Gamma(x)| for real x (not a pole): Stirling's series after shifting x above 60, reflection below 1/2."""
    x = D(x)
    if x < D("0.5"):
        # Gamma(x) Gamma(1 - x) = pi / sin(pi x), with the argument reduced exactly
        r = x - 2 * (x / 2).to_integral_value()
        return PI.ln() - abs(sin_dec(PI * r)).ln() - lgamma_dec(1 - x)
    with decimal.localcontext() as c:
        c.prec += 20
        shift = max(0, 60 - int(x))
        prod = D(1)
        for k in range(shift):
            prod *= x + k
        y = x + shift
        s = (y - D("0.5")) * y.ln() - y + SQRT_2PI.ln()
        for k, b in enumerate(B2K, start=1):
            term = D(b.numerator) / D(b.denominator) / (2 * k * (2 * k - 1) * y ** (2 * k - 1))
            s += term
            if abs(term) < D(10) ** -(c.prec + 2):
                break
        v = s - prod.ln()
    return +v


# ---------------------------------------------------------------------------------------------------------
# A_alpha three ways
# ---------------------------------------------------------------------------------------------------------

def a_int_exact(q, sigma, n):
    """Exact binomial sum (integer order n)."""
    q, sigma = D(q), D(sigma)
    s = D(0)
    for k in range(n + 1):
        s += math.comb(n, k) * (1 - q) ** (n - k) * q**k * (D(k * k - k) / (2 * sigma * sigma)).exp()
    return s


def a_quadrature(q, sigma, alpha, h=None):
    """Trapezoidal rule for A = Int phi(u) (1 - q + q e^(u/sigma - 1/(2 sigma^2)))^alpha du on the grid u = k h.

    The integrand is analytic in the strip |Im u| < pi*sigma (branch points of the power) and Gaussian in the tails,
    so the rule's error falls like exp(-2 pi^2 sigma / h); the tails are cut 40 standard deviations beyond the two
    bumps (u = 0 and u = alpha/sigma). Step 1/16 (1/32 for sigma < 1). Returns (T(h), T(2h)).
    """
    if h is None:
        h = D(1) / (32 if sigma < 1 else 16)
    q, sigma, alpha = D(q), D(sigma), D(alpha)
    one_m_q = 1 - q
    shift = 1 / (2 * sigma * sigma)
    kmin = int(math.floor(-40 / h))
    kmax = int(math.ceil((alpha / sigma + 40) / h))
    kmin -= kmin % 2  # even, so that T(2h) uses every other node of the same grid
    total = D(0)
    even = D(0)
    for k in range(kmin, kmax + 1):
        u = k * h
        inner = one_m_q + q * (u / sigma - shift).exp()
        f = (-(u * u) / 2 + alpha * inner.ln()).exp()
        total += f
        if k % 2 == 0:
            even += f
    return total * h / SQRT_2PI, even * 2 * h / SQRT_2PI


def a_two_series(q, sigma, alpha, max_terms=2500, rel_tol=D(10) ** -22):
    """Mironov-Talwar-Zhang two-series expansion (what TF-Privacy/Opacus `_compute_log_a_frac` sums).

    Returns (A, bound): bound is the magnitude of the last term added (for i > alpha + 1 both series alternate with
    decreasing magnitude, so it bounds the truncation error).
    """
    q, sigma, alpha = D(q), D(sigma), D(alpha)
    z0 = sigma * sigma * (1 / q - 1).ln() + D("0.5")
    s2 = 2 * sigma * sigma
    r2s = D(2).sqrt() * sigma
    a = D(0)
    coef = D(1)
    i = 0
    last = D(0)
    while True:
        j = alpha - i
        t0 = coef * q**i * (1 - q) ** j * (D(i * i - i) / s2).exp() * erfc((i - z0) / r2s) / 2
        t1 = coef * q**j * (1 - q) ** i * ((j * j - j) / s2).exp() * erfc((z0 - j) / r2s) / 2
        a += t0 + t1
        last = abs(t0 + t1)
        if i > alpha + 1 and (last < rel_tol * abs(a) or i >= max_terms):
            return a, last
        coef = coef * (alpha - i) / (i + 1)
        i += 1


def is_int(x):
    return float(x).is_integer()


def log_a(q, sigma, alpha, checks=None):
    """ln A for one SGM step (0 < q < 1, sigma > 0, alpha > 1)."""
    if is_int(alpha):
        return a_int_exact(q, sigma, int(alpha)).ln()
    t_h, t_2h = a_quadrature(q, sigma, alpha)
    rel = abs(t_h - t_2h) / t_h
    if rel > D(10) ** -30:
        raise RuntimeError(f"quadrature not converged for q={q} sigma={sigma} alpha={alpha}: {rel}")
    if checks is not None:
        checks["quad_h_vs_2h_max"] = max(checks.get("quad_h_vs_2h_max", 0.0), float(rel))
    return t_h.ln()


def rdp(q, sigma, steps, alpha, checks=None):
    if q == 0 or steps == 0:
        return D(0)
    if q == 1:
        return D(steps) * D(alpha) / (2 * D(sigma) ** 2)
    return D(steps) * log_a(q, sigma, alpha, checks) / (D(alpha) - 1)


def eps_balle(alpha, r, delta):
    a, d = D(alpha), D(delta)
    return r + ((a - 1) / a).ln() - (d.ln() + a.ln()) / (a - 1)


def eps_classic(alpha, r, delta):
    """Mironov (2017) conversion, used by TF-Privacy before 2020: eps = RDP(a) + ln(1/delta)/(a - 1)."""
    return r - D(delta).ln() / (D(alpha) - 1)


# Orders exactly as the TypeScript DEFAULT_ORDERS: k/10 for k = 11..109, then 11..63.
DEFAULT_ORDERS = [k / 10 for k in range(11, 110)] + list(range(11, 64))
# Opacus' RDPAccountant.DEFAULT_ALPHAS (also TF-Privacy's compute_dp_sgd_privacy orders).
OPACUS_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
assert set(OPACUS_ALPHAS) <= set(DEFAULT_ORDERS)


def main():
    t_start = time.time()
    checks = {}

    # ---- cross-check 1: quadrature vs exact integer sums ---------------------------------------------------
    worst = 0.0
    for q in (0.001, 0.1, 0.5, 0.9):
        for sigma in (0.5, 1.0, 5.0):
            for n in (2, 3, 8, 11):
                exact = a_int_exact(q, sigma, n)
                quad, _ = a_quadrature(q, sigma, n)
                worst = max(worst, float(abs(quad - exact) / exact))
    checks["quad_vs_exact_integer_max_rel"] = worst
    print(f"quadrature vs exact binomial sum (integer orders): max rel diff {worst:.3g}")
    assert worst < 1e-30

    # ---- grid ------------------------------------------------------------------------------------------------
    qs = [0.001, 0.01, 0.1, 0.5, 0.9]
    sigmas = [0.5, 0.8, 1.0, 2.0, 5.0, 20.0]
    orders = [1.5, 2, 2.5, 3.7, 8, 10.9, 32, 63]
    grid = []
    series_worst = (0.0, None)
    series_excess = 0.0
    for q in qs:
        for sigma in sigmas:
            for alpha in orders:
                r1 = rdp(q, sigma, 1, alpha, checks)
                if not is_int(alpha):
                    a_ser, bound = a_two_series(q, sigma, alpha)
                    la_ser = a_ser.ln()
                    la = r1 * (D(alpha) - 1)
                    a_quad = la.exp()
                    diff = abs(a_ser - a_quad)
                    series_worst = max(series_worst, (float(abs(la_ser - la) / la), (q, sigma, alpha, float(bound))))
                    # the discrepancy must be within the series' own truncation bound (plus rounding)
                    series_excess = max(series_excess, float(diff - bound - a_quad * D(10) ** -40))
                for steps in (1, 1000):
                    grid.append({"q": q, "sigma": sigma, "order": alpha, "steps": steps, "rdp": float(r1 * steps)})
        print(f"  grid q={q} done ({time.time() - t_start:.0f}s)")
    checks["two_series_vs_quadrature_max_rel_logA"] = series_worst[0]
    checks["two_series_worst_case_q_sigma_alpha_bound"] = series_worst[1]
    print(f"two-series expansion vs quadrature (fractional orders): max rel diff of ln A {series_worst[0]:.3g}"
          f" at (q, sigma, alpha, truncation bound) = {series_worst[1]}")
    assert series_excess <= 0, f"series disagrees with quadrature beyond its truncation bound ({series_excess})"

    # ---- epsilon cases ---------------------------------------------------------------------------------------
    mnist_q = 256 / 60000

    def steps_for(epochs):
        return math.ceil(epochs * 60000 / 256)

    eps_cases = [
        {"name": "q=0.01, sigma=1.1, T=10000", "q": 0.01, "sigma": 1.1, "steps": 10000, "delta": 1e-5},
        {
            "name": "TF-Privacy MNIST tutorial defaults: N=60000, batch 256, sigma=1.1, 60 epochs",
            "q": mnist_q, "sigma": 1.1, "steps": steps_for(60), "delta": 1e-5,
            "published": {"epsilon": 3.01, "conversion": "classic", "orders": "opacus",
                          "source": "tensorflow/privacy tutorials/README.md (compute_dp_sgd_privacy.py)"},
        },
        {
            "name": "TF-Privacy MNIST tutorial table: sigma=0.7, 45 epochs",
            "q": mnist_q, "sigma": 0.7, "steps": steps_for(45), "delta": 1e-5,
            "published": {"epsilon": 7.10, "conversion": "classic", "orders": "opacus",
                          "source": "tensorflow/privacy tutorials/README.md"},
        },
        {
            "name": "TF-Privacy MNIST tutorial table: sigma=1.3, 15 epochs",
            "q": mnist_q, "sigma": 1.3, "steps": steps_for(15), "delta": 1e-5,
            "published": {"epsilon": 1.19, "conversion": "classic", "orders": "opacus",
                          "source": "tensorflow/privacy tutorials/README.md"},
        },
        {
            "name": "Opacus accountants_test.test_rdp_accountant: sigma=1.5, q=0.04, 90 epochs",
            "q": 0.04, "sigma": 1.5, "steps": int(90 / 0.04), "delta": 1e-5,
            "published": {"epsilon": 7.32911117143, "conversion": "balle", "orders": "opacus",
                          "source": "pytorch/opacus opacus/tests/accountants_test.py"},
        },
        {"name": "Shoal-like: half the shard per round, sigma=1, 50 rounds", "q": 0.5, "sigma": 1.0, "steps": 50,
         "delta": 1e-5},
        {"name": "no subsampling (q=1), sigma=5, 100 rounds", "q": 1.0, "sigma": 5.0, "steps": 100, "delta": 1e-6},
    ]
    eps_out = []
    for case in eps_cases:
        r = {a: rdp(case["q"], case["sigma"], case["steps"], a, checks) for a in DEFAULT_ORDERS}
        e_default = min((eps_balle(a, r[a], case["delta"]), a) for a in DEFAULT_ORDERS)
        e_opacus = min((eps_balle(a, r[a], case["delta"]), a) for a in OPACUS_ALPHAS)
        e_classic = min((eps_classic(a, r[a], case["delta"]), a) for a in OPACUS_ALPHAS)
        out = {k: v for k, v in case.items() if k != "published"}
        out["orders"] = "DEFAULT_ORDERS"
        out["epsilon"] = float(max(e_default[0], D(0)))
        out["order"] = e_default[1]
        out["epsilon_opacus_alphas"] = float(e_opacus[0])
        out["order_opacus_alphas"] = e_opacus[1]
        out["epsilon_classic_conversion_opacus_alphas"] = float(e_classic[0])
        if "published" in case:
            out["published"] = case["published"]
        eps_out.append(out)
        print(f"  eps: {case['name']}: {out['epsilon']:.6f} @ {out['order']} (classic {float(e_classic[0]):.4f})"
              f" ({time.time() - t_start:.0f}s)")

    # Heterogeneous composition, Opacus' rdp.py docstring example (integer orders 2..32): eps 0.336 at order 23.
    comp = [(1e-5, 1.0, 10), (1e-4, 3.0, 4)]
    comp_orders = list(range(2, 33))
    r = {a: sum(rdp(q, s, t, a) for (q, s, t) in comp) for a in comp_orders}
    e = min((eps_balle(a, r[a], 1e-5), a) for a in comp_orders)
    eps_out.append({
        "name": "heterogeneous composition (Opacus analysis/rdp.py docstring)",
        "composition": [{"q": q, "sigma": s, "steps": t} for (q, s, t) in comp],
        "delta": 1e-5, "orders": comp_orders, "epsilon": float(e[0]), "order": e[1],
        "published": {"epsilon": 0.336, "order": 23, "conversion": "balle", "orders": "2..32",
                      "source": "pytorch/opacus opacus/accountants/analysis/rdp.py docstring"},
    })

    # ---- special functions -----------------------------------------------------------------------------------
    xs = [-30, -5, -1.5, -1, -0.999, -0.5, -1e-3, 0, 1e-8, 0.1, 0.5, 0.9999, 1, 1.0001, 1.5, 2, 3, 5, 8, 10, 20,
          26, 27, 30, 50, 100, 1e3, 1e4, 1e6]
    log_erfc_vals = [[x, float(log_erfc(D(x)))] for x in xs]
    for x, v in log_erfc_vals:  # sanity: agree with the C library where erfc is representable
        if -6 < x < 26:
            assert abs(v - math.log(math.erfc(x))) <= 1e-14 * max(1, abs(v)), (x, v)
    gs = [0.1, 0.5, 1, 1.5, 2, 2.5, 3.7, 10, 10.9, 30.5, 64, 100, 1000.5, 100000.3, 1e7, -0.5, -1.5, -2.7, -10.3]
    lgamma_vals = [[x, float(lgamma_dec(D(x)))] for x in gs]
    for x, v in lgamma_vals:
        assert abs(v - math.lgamma(x)) <= 1e-12 * max(1, abs(v)), (x, v)
    assert abs(lgamma_dec(D("0.5")) - SQRT_PI.ln()) < D(10) ** -45

    meta = {
        "generator": "test/vectors/rdp/generate.py",
        "python": sys.version.split()[0],
        "precision_digits": PREC,
    }
    with open(os.path.join(HERE, "rdp-grid.json"), "w") as f:
        json.dump({**meta, "description": "RDP of the sampled Gaussian mechanism: steps * ln(A_alpha)/(alpha - 1)",
                   "checks": checks, "cases": grid}, f, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "epsilon.json"), "w") as f:
        json.dump({**meta, "description": "(eps, delta) from RDP, Balle et al. 2020 conversion, minimised over orders",
                   "cases": eps_out}, f, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "special.json"), "w") as f:
        json.dump({**meta, "description": "ln erfc(x) and ln|Gamma(x)|", "logErfc": log_erfc_vals,
                   "lgamma": lgamma_vals}, f, indent=1)
        f.write("\n")
    print(f"done in {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
