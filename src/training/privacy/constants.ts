/**
 * Defaults of the privacy module.
 */

/**
 * Rényi orders α at which the accountant tracks RDP: 1.1, 1.2, …, 10.9 (each computed as k/10, so each is the
 * double nearest to its decimal value) and the integers 11 … 63. This is Opacus' `DEFAULT_ALPHAS`
 * (`[1 + x / 10 for x in 1..99] + range(12, 64)`) with 11 added. ε is minimised over these orders; for the
 * ranges of q, σ and steps met in practice the optimum lies well inside them.
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => (i + 11) / 10),
  ...Array.from({ length: 53 }, (_, i) => i + 11)
])

/**
 * The fractional-order series stops once its terms fall below e^-37 (≈ 8.5e-17, i.e. double rounding) of the
 * running sum of its positive terms.
 */
export const SERIES_LOG_TOLERANCE = -37

/**
 * Safety cap on the number of terms of the fractional-order series (normally it ends after tens to a few
 * hundred terms, the slowly decaying tails being summed by an Euler transform). Its tails alternate with
 * decreasing magnitude, so at the cap the first omitted term bounds the error and is added when positive.
 */
export const SERIES_MAX_TERMS = 200_000
