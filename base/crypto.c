#include "autoconfig.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

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
