/*
 * A wolfSSL TLS 1.3 PSK server, the interop peer of the QKS tunnel client tests.
 * Usage: wolfssl-psk-server PORT IDENTITY psk_ke|psk_dhe_ke   (the key, in hex, on the first line of stdin)
 * The key comes on stdin, not in argv, so that no process listing or error message shows it.
 * Listens on 127.0.0.1:PORT (0: any free port) and prints "listening PORT"; then serves one
 * connection at a time, echoing what it reads until the client closes. It knows one PSK: a client
 * with another identity gets no key and its handshake fails. Each connection gets one line on
 * stderr (identity and key exchange, or why it failed); never key bytes.
 * With psk_ke it never uses (EC)DHE (wolfSSL_CTX_no_dhe_psk), so a client must offer psk_ke.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static char identity_arg[256];
static unsigned char key_arg[128];
static unsigned int key_len;

/* Called with the identity the client offers: the key for ours, nothing (0) for any other. */
static unsigned int psk_callback(WOLFSSL *ssl, const char *identity, unsigned char *key, unsigned int key_max,
                                 const char **suite) {
  (void)ssl;
  if (strcmp(identity, identity_arg) != 0 || key_len > key_max) {
    fprintf(stderr, "unknown PSK identity %s\n", identity);
    return 0;
  }
  memcpy(key, key_arg, key_len);
  *suite = "TLS13-AES128-GCM-SHA256";
  return key_len;
}

static int fail(const char *what) {
  fprintf(stderr, "wolfssl-psk-server: %s\n", what);
  return 1;
}

static void serve(WOLFSSL_CTX *ctx, int fd) {
  WOLFSSL *ssl = wolfSSL_new(ctx);
  wolfSSL_set_fd(ssl, fd);
  if (wolfSSL_accept(ssl) != WOLFSSL_SUCCESS) {
    char reason[80];
    wolfSSL_ERR_error_string((unsigned long)wolfSSL_get_error(ssl, 0), reason);
    fprintf(stderr, "handshake failed: %s\n", reason);
  } else {
    /* No curve: the handshake used the PSK alone (psk_ke). */
    const char *curve = wolfSSL_get_curve_name(ssl);
    fprintf(stderr, "connection: identity %s, key exchange %s\n", identity_arg, curve ? curve : "none");
    char buf[4096];
    int n;
    while ((n = wolfSSL_read(ssl, buf, sizeof buf)) > 0)
      if (wolfSSL_write(ssl, buf, n) != n) break;
    wolfSSL_shutdown(ssl);
  }
  wolfSSL_free(ssl);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc != 4) return fail("usage: PORT IDENTITY psk_ke|psk_dhe_ke (key hex on stdin)");
  prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test that started us */
  signal(SIGPIPE, SIG_IGN);         /* a client that resets is no reason to stop */
  snprintf(identity_arg, sizeof identity_arg, "%s", argv[2]);
  char hex[2 * sizeof key_arg + 2];
  if (!fgets(hex, sizeof hex, stdin)) return fail("no key on stdin");
  size_t digits = strcspn(hex, "\r\n");
  if (digits == 0 || digits % 2 || digits / 2 > sizeof key_arg) return fail("bad key");
  for (key_len = 0; key_len < digits / 2; key_len++) sscanf(hex + 2 * key_len, "%2hhx", &key_arg[key_len]);
  memset(hex, 0, sizeof hex);

  wolfSSL_Init();
  WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
  if (!ctx) return fail("no context");
  wolfSSL_CTX_set_psk_server_tls13_callback(ctx, psk_callback);
  if (strcmp(argv[3], "psk_ke") == 0) wolfSSL_CTX_no_dhe_psk(ctx);
  wolfSSL_CTX_no_ticket_TLSv13(ctx); /* no resumption: every connection is keyed by the PSK */
  if (wolfSSL_CTX_set_cipher_list(ctx, "TLS13-AES128-GCM-SHA256") != WOLFSSL_SUCCESS) return fail("no suite");

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  socklen_t len = sizeof addr;
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0 ||
      getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
    return fail("cannot listen");
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  for (;;) {
    int fd = accept(listener, NULL, NULL);
    if (fd >= 0) serve(ctx, fd);
  }
}
