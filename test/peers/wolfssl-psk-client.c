/*
 * A wolfSSL TLS 1.3 PSK client, the interop peer of the QKS tunnel tests.
 * Usage: wolfssl-psk-client HOST PORT IDENTITY HEXKEY psk_ke|psk_dhe_ke MESSAGE
 * Sends MESSAGE, prints what comes back, exits 0; prints the error and exits 1 on failure.
 * With psk_ke it offers only psk_ke (wolfSSL_CTX_no_dhe_psk): a pure PSK client.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char identity_arg[256];
static unsigned char key_arg[128];
static unsigned int key_len;

static unsigned int psk_callback(WOLFSSL *ssl, const char *hint, char *identity, unsigned int identity_max,
                                 unsigned char *key, unsigned int key_max, const char **suite) {
  (void)ssl;
  (void)hint;
  if (strlen(identity_arg) + 1 > identity_max || key_len > key_max) return 0;
  strcpy(identity, identity_arg);
  memcpy(key, key_arg, key_len);
  *suite = "TLS13-AES128-GCM-SHA256";
  return key_len;
}

static int fail(const char *what) {
  fprintf(stderr, "wolfssl-psk-client: %s\n", what);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 7) return fail("usage: HOST PORT IDENTITY HEXKEY psk_ke|psk_dhe_ke MESSAGE");
  snprintf(identity_arg, sizeof identity_arg, "%s", argv[3]);
  size_t hex = strlen(argv[4]);
  if (hex % 2 || hex / 2 > sizeof key_arg) return fail("bad key");
  for (key_len = 0; key_len < hex / 2; key_len++) sscanf(argv[4] + 2 * key_len, "%2hhx", &key_arg[key_len]);

  wolfSSL_Init();
  WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
  if (!ctx) return fail("no context");
  wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
  wolfSSL_CTX_set_psk_client_tls13_callback(ctx, psk_callback);
  if (strcmp(argv[5], "psk_ke") == 0) wolfSSL_CTX_no_dhe_psk(ctx);
  if (wolfSSL_CTX_set_cipher_list(ctx, "TLS13-AES128-GCM-SHA256") != WOLFSSL_SUCCESS) return fail("no suite");

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  inet_pton(AF_INET, argv[1], &addr.sin_addr);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return fail("cannot connect");

  WOLFSSL *ssl = wolfSSL_new(ctx);
  wolfSSL_set_fd(ssl, fd);
  if (wolfSSL_connect(ssl) != WOLFSSL_SUCCESS) {
    char reason[80];
    wolfSSL_ERR_error_string((unsigned long)wolfSSL_get_error(ssl, 0), reason);
    return fail(reason);
  }
  int n = (int)strlen(argv[6]);
  if (wolfSSL_write(ssl, argv[6], n) != n) return fail("write failed");
  char buf[4096];
  int got = 0;
  while (got < n) {
    int r = wolfSSL_read(ssl, buf + got, (int)sizeof buf - got - 1);
    if (r <= 0) break;
    got += r;
  }
  buf[got] = 0;
  printf("%s\n", buf);
  wolfSSL_shutdown(ssl);
  wolfSSL_free(ssl);
  wolfSSL_CTX_free(ctx);
  close(fd);
  return got == n ? 0 : fail("short reply");
}
