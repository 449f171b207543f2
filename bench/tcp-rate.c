// New-TCP-connection rate, for the packet-path case of bench/run.mjs. In C
// because the figure compared (1 vs 1,000 forwards installed) differs by far
// less than a Node or Python client's own per-connection cost would hide.
//
//   tcp-rate server PORT              accept and close, forever (killed by the bench)
//   tcp-rate client IP PORT SECONDS THREADS
//                                     connect, then close with RST (SO_LINGER 0: no
//                                     TIME_WAIT, so ephemeral ports never run out);
//                                     prints "<connections> <failures>" after SECONDS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static atomic_long ok, failed;
static atomic_int stop;

static void *client(void *arg) {
  (void)arg;
  struct linger lg = {1, 0};
  while (!atomic_load(&stop)) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) { atomic_fetch_add(&failed, 1); continue; }
    if (connect(s, (struct sockaddr *)&target, sizeof target) == 0) atomic_fetch_add(&ok, 1);
    else atomic_fetch_add(&failed, 1);
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(s);
  }
  return NULL;
}

static int serve(int port) {
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4096)) { perror("server"); return 1; }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c >= 0) close(c);
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "server")) return serve(atoi(argv[2]));
  if (argc != 6 || strcmp(argv[1], "client")) {
    fprintf(stderr, "usage: tcp-rate server PORT | tcp-rate client IP PORT SECONDS THREADS\n");
    return 2;
  }
  target.sin_family = AF_INET;
  target.sin_port = htons(atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[2]); return 2; }
  double seconds = atof(argv[4]);
  int threads = atoi(argv[5]);
  pthread_t t[64];
  if (threads < 1 || threads > 64) return 2;
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, client, NULL);
  struct timespec d = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
  nanosleep(&d, NULL);
  atomic_store(&stop, 1);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  printf("%ld %ld\n", atomic_load(&ok), atomic_load(&failed));
  return 0;
}
