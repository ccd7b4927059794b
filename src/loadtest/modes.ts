/** What each load client does: identification only, key exchange, or key exchange and public-key auth. */
export const LOAD_MODES = ['banner', 'kex', 'auth'] as const;
export type LoadMode = (typeof LOAD_MODES)[number];
