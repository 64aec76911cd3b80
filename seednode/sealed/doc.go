// Package sealed is the client-side encryption of vault data: values and
// files are sealed with the vault's epoch content key (XChaCha20-Poly1305,
// bound to the vault, entry key and epoch so a seed cannot move them), entry
// names become keyed per-segment tags that keep prefix listing working, and
// epoch keys reach each authorized device in an envelope sealed to its
// Ed25519 key via X25519. Seeds only ever see the sealed bytes, and every
// decoder here treats its input as hostile.
package sealed
