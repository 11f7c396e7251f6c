#include "autoconfig.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "base/crypto.h"
#include "base/util.h"

int aead_seal(const unsigned char key[AEAD_KEY_LEN], const void *aad, size_t aad_len,
	      const void *pt, size_t len, unsigned char nonce[AEAD_NONCE_LEN],
	      unsigned char *ct, unsigned char tag[AEAD_TAG_LEN])
{
	EVP_CIPHER_CTX *ctx;
	int n, fin, ok;

	if (len > AEAD_MAX_PLAINTEXT || aad_len > 4096 || rand_bytes(nonce, AEAD_NONCE_LEN))
		return -1;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -1;
	ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, AEAD_NONCE_LEN, NULL) == 1 &&
	     EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
	     EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
	     EVP_EncryptUpdate(ctx, ct, &n, pt, (int)len) == 1 && (size_t)n == len &&
	     EVP_EncryptFinal_ex(ctx, ct + n, &fin) == 1 && fin == 0 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		OPENSSL_cleanse(ct, len);
	return ok ? 0 : -1;
}

int aead_open(const unsigned char key[AEAD_KEY_LEN], const void *aad, size_t aad_len,
	      const unsigned char nonce[AEAD_NONCE_LEN], const unsigned char *ct, size_t len,
	      const unsigned char tag[AEAD_TAG_LEN], unsigned char *pt)
{
	unsigned char tagcopy[AEAD_TAG_LEN];
	EVP_CIPHER_CTX *ctx;
	int n, fin, ok;

	if (len > AEAD_MAX_PLAINTEXT || aad_len > 4096)
		return -1;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -1;
	memcpy(tagcopy, tag, AEAD_TAG_LEN);   /* the ctrl call takes a non-const pointer */
	ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, AEAD_NONCE_LEN, NULL) == 1 &&
	     EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
	     EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
	     EVP_DecryptUpdate(ctx, pt, &n, ct, (int)len) == 1 && (size_t)n == len &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, tagcopy) == 1 &&
	     EVP_DecryptFinal_ex(ctx, pt + n, &fin) == 1 && fin == 0;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		OPENSSL_cleanse(pt, len);
	return ok ? 0 : -1;
}

int hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len,
		unsigned char out[MAC_LEN])
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	size_t n = 0;
	int ok;

	ok = ctx && EVP_MAC_init(ctx, key, key_len, params) == 1 && EVP_MAC_update(ctx, msg, len) == 1 &&
	     EVP_MAC_final(ctx, out, &n, MAC_LEN) == 1 && n == MAC_LEN;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	if (!ok)
		OPENSSL_cleanse(out, MAC_LEN);
	return ok ? 0 : -1;
}

int hkdf_sha256(const void *ikm, size_t ikm_len, const char *info, unsigned char *out,
		size_t out_len)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
		OSSL_PARAM_construct_end(),
	};
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int ok;

	ok = ctx && ikm_len > 0 && out_len > 0 && EVP_KDF_derive(ctx, out, out_len, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (!ok)
		OPENSSL_cleanse(out, out_len);
	return ok ? 0 : -1;
}
