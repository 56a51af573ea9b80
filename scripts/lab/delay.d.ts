/** Types of scripts/lab/delay.js (plain JS so that `node --import` loads it without a TypeScript loader). */
export declare function installDelay(opts: { ms: number; match?: (address: string) => boolean }): () => void
