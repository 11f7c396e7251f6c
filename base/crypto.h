/* crypto.h - AES-256-GCM, HMAC-SHA256 and HKDF-SHA256 through OpenSSL
 * EVP, nothing else.
 *
 * aead_seal() draws a fresh random 96-bit nonce for every call; the AAD is
 * authenticated but not stored, so a ciphertext only opens with the exact
 * AAD it was sealed under (see secrets.c for what goes in it). */
#ifndef ANYON_CRYPTO_H
#define ANYON_CRYPTO_H

#include <stddef.h>

#define AEAD_KEY_LEN 32
#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16
/* Largest plaintext accepted (a secret, not a file). */
#define AEAD_MAX_PLAINTEXT (64 * 1024)

/* Encrypts len bytes of pt into ct (len bytes) and writes the nonce used
 * and the tag. Returns 0, or -1 on failure (nothing usable written). */
int aead_seal(const unsigned char key[AEAD_KEY_LEN], const void *aad, size_t aad_len,
	      const void *pt, size_t len, unsigned char nonce[AEAD_NONCE_LEN],
	      unsigned char *ct, unsigned char tag[AEAD_TAG_LEN]);

/* Decrypts and verifies. Returns 0 with len bytes of plaintext in pt, or -1
 * when anything (key, AAD, nonce, ciphertext, tag) is wrong; pt is then
 * wiped, so no unauthenticated byte is ever returned. */
int aead_open(const unsigned char key[AEAD_KEY_LEN], const void *aad, size_t aad_len,
	      const unsigned char nonce[AEAD_NONCE_LEN], const unsigned char *ct, size_t len,
	      const unsigned char tag[AEAD_TAG_LEN], unsigned char *pt);

#define MAC_LEN 32

/* HMAC-SHA256 (EVP_MAC) of len bytes of msg under key. Returns 0, or -1
 * (out wiped). */
int hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len,
		unsigned char out[MAC_LEN]);

/* HKDF-SHA256 (EVP_KDF, RFC 5869 extract-and-expand, no salt): out_len
 * bytes of key derived from ikm for the purpose named by info, so one
 * keyring key can serve several purposes without one use weakening
 * another. Returns 0, or -1 (out wiped). */
int hkdf_sha256(const void *ikm, size_t ikm_len, const char *info, unsigned char *out,
		size_t out_len);

#endif
