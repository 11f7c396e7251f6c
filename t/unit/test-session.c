/* Session tokens: hashing, hex handling, CSRF derivation. */
#include "autoconfig.h"

#include "base/crypto.h"
#include "base/util.h"
#include "fcgi/session.h"
#include "t/unit/tap.h"

int main(void)
{
	const char *tok = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	unsigned char raw[32], h1[32], h2[32], direct[32];
	char hex[65], csrf1[65], csrf2[65];
	struct req r;

	ok(session_token_hash(tok, h1) == 0, "hex token hashes");
	for (int i = 0; i < 32; i++)
		raw[i] = (unsigned char)i;
	sha256(raw, sizeof(raw), direct);
	ok(memcmp(h1, direct, 32) == 0, "hash is SHA-256 of the raw 32 bytes");
	hex_encode(h1, 32, hex);
	is_str(hex, "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd",
	       "known SHA-256 value");
	ok(session_token_hash("0001", h2) != 0, "short token refused");
	ok(session_token_hash("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", h2) != 0,
	   "non-hex refused");
	ok(session_token_hash("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00", h2) != 0,
	   "long token refused");
	ok(session_token_hash("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", h2) == 0 &&
	   memcmp(h1, h2, 32) == 0, "upper-case hex is the same token");

	memset(&r, 0, sizeof(r));
	str_copy(r.token, sizeof(r.token), tok);
	session_csrf_token(&r, csrf1);
	session_csrf_token(&r, csrf2);
	is_str(csrf1, csrf2, "CSRF token is stable for a session");
	ok(strlen(csrf1) == 64, "CSRF token is 64 hex digits");
	ok(strcmp(csrf1, tok) != 0, "CSRF token is not the session token");
	hex_encode(h1, 32, hex);
	ok(strcmp(csrf1, hex) != 0, "CSRF token is not the stored hash");
	r.token[0] = '1';
	session_csrf_token(&r, csrf2);
	ok(strcmp(csrf1, csrf2) != 0, "another session, another CSRF token");

	/* RFC 4231 test case 2 and RFC 5869 test case 3 (no salt, no info). */
	{
		unsigned char mac[MAC_LEN], ikm[22], okm[42];
		char h[2 * sizeof(okm) + 1];

		ok(hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac) == 0, "HMAC-SHA256 runs");
		hex_encode(mac, sizeof(mac), h);
		is_str(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
		       "HMAC-SHA256 matches RFC 4231 test case 2");
		memset(ikm, 0x0b, sizeof(ikm));
		ok(hkdf_sha256(ikm, sizeof(ikm), "", okm, sizeof(okm)) == 0, "HKDF-SHA256 runs");
		hex_encode(okm, sizeof(okm), h);
		is_str(h, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
			  "9d201395faa4b61a96c8", "HKDF-SHA256 matches RFC 5869 test case 3");
		ok(hkdf_sha256(ikm, sizeof(ikm), "other purpose", okm, 32) == 0 &&
		   (hex_encode(okm, 32, h), strncmp(h, "8da4e775", 8) != 0), "another label, another key");
		ok(hkdf_sha256(ikm, 0, "x", okm, 32) != 0, "HKDF refuses an empty key");
	}

	for (int i = 0; i < 3; i++) {
		unsigned char a[32], b[32];

		ok(rand_bytes(a, 32) == 0 && rand_bytes(b, 32) == 0 && memcmp(a, b, 32) != 0,
		   "random tokens differ (%d)", i);
	}
	return done_testing();
}
