/*
 * Benchmark load client (127.0.0.1, or the IPv4 address in BENCH_TARGET_HOST: a network
 * namespace of the benchmark's own). Every mode is bounded by a deadline (alarm) and prints
 * one JSON object on stdout.
 *
 *   client bulk-up   <port> <bytes> <timeout_s>   banner, send <bytes>, FIN, wait for EOF
 *   client bulk-down <port> <bytes> <timeout_s>   banner, receive <bytes>, close
 *   client rate      <port> <concurrency> <total> <timeout_s>
 *                    <total> connections, <concurrency> in flight: connect, read the
 *                    identification line, close; time-to-banner per connection
 *   client hold      <port> <count> <timeout_s>
 *                    opens <count> sessions and reads each banner, prints {"held":n};
 *                    then per stdin line "check": one byte each way on every session
 *                    (echo backend), prints {"passing":n}; closes all on stdin EOF
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static char buf[256 * 1024];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "{\"error\":\"deadline exceeded\"}\n";
  ssize_t ignored = write(1, msg, sizeof msg - 1);
  (void)ignored;
  _exit(3);
}

static int connect_blocking(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads up to and including the first LF; returns 0 when found. */
static int read_banner_blocking(int fd) {
  char c;
  for (;;) {
    ssize_t r = read(fd, &c, 1);
    if (r <= 0) return -1;
    if (c == '\n') return 0;
  }
}

static int bulk(int up, long long bytes) {
  int fd = connect_blocking();
  if (fd < 0 || read_banner_blocking(fd) < 0) {
    printf("{\"error\":\"connect or banner failed\"}\n");
    return 1;
  }
  double start = now_s();
  long long done = 0;
  if (up) {
    while (done < bytes) {
      long long want = bytes - done < (long long)sizeof buf ? bytes - done : (long long)sizeof buf;
      ssize_t w = write(fd, buf, (size_t)want);
      if (w <= 0) break;
      done += w;
    }
    shutdown(fd, SHUT_WR);
    while (read(fd, buf, sizeof buf) > 0) {
    }
  } else {
    while (done < bytes) {
      long long want = bytes - done < (long long)sizeof buf ? bytes - done : (long long)sizeof buf;
      ssize_t r = read(fd, buf, (size_t)want);
      if (r <= 0) break;
      done += r;
    }
  }
  double seconds = now_s() - start;
  close(fd);
  printf("{\"bytes\":%lld,\"seconds\":%.6f,\"mibPerSecond\":%.1f}\n", done, seconds, (double)done / 1048576.0 / seconds);
  return done == bytes ? 0 : 1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct conn {
  double started;
  int open;
};

static int start_connect(int ep, struct conn *conns, int max_fd) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (fd >= max_fd) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conns[fd].started = now_s();
  conns[fd].open = 1;
  if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
    conns[fd].open = 0;
    close(fd);
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  return fd;
}

/* Reads what is there; 1 = banner line complete, 0 = not yet, -1 = failed. */
static int banner_ready(int fd) {
  ssize_t r = read(fd, buf, sizeof buf);
  if (r > 0) return memchr(buf, '\n', (size_t)r) ? 1 : 0;
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  return -1;
}

static int rate(int concurrency, int total) {
  int max_fd = concurrency * 4 + 64;
  struct conn *conns = calloc((size_t)max_fd, sizeof *conns);
  double *lat = calloc((size_t)total, sizeof *lat);
  int ep = epoll_create1(0);
  int started = 0, ok = 0, failed = 0, inflight = 0;
  double start = now_s();
  struct epoll_event events[512];
  while (ok + failed < total) {
    while (inflight < concurrency && started < total) {
      started++;
      if (start_connect(ep, conns, max_fd) < 0) failed++;
      else inflight++;
    }
    int n = epoll_wait(ep, events, 512, 1000);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      int state = banner_ready(fd);
      if (state == 0) continue;
      if (state == 1) lat[ok++] = (now_s() - conns[fd].started) * 1e6;
      else failed++;
      conns[fd].open = 0;
      close(fd);
      inflight--;
    }
  }
  double seconds = now_s() - start;
  qsort(lat, (size_t)ok, sizeof *lat, cmp_double);
  double p50 = ok ? lat[(int)(ok * 0.50)] : 0, p99 = ok ? lat[(int)(ok * 0.99)] : 0;
  printf("{\"ok\":%d,\"failed\":%d,\"seconds\":%.4f,\"perSecond\":%.1f,\"p50Us\":%.1f,\"p99Us\":%.1f}\n", ok, failed, seconds,
         ok / seconds, p50, p99);
  return failed == 0 ? 0 : 1;
}

static int hold(int count) {
  int max_fd = count + 1024;
  struct conn *conns = calloc((size_t)max_fd, sizeof *conns);
  int *fds = calloc((size_t)count, sizeof *fds);
  int ep = epoll_create1(0);
  int started = 0, held = 0, failed = 0, inflight = 0;
  struct epoll_event events[512];
  /* Open with a bounded number in flight, like clients arriving over time. */
  while (held + failed < count) {
    while (inflight < 200 && started < count) {
      started++;
      if (start_connect(ep, conns, max_fd) < 0) failed++;
      else inflight++;
    }
    int n = epoll_wait(ep, events, 512, 1000);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      int state = banner_ready(fd);
      if (state == 0) continue;
      inflight--;
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      if (state == 1) fds[held++] = fd;
      else {
        failed++;
        close(fd);
      }
    }
  }
  printf("{\"held\":%d,\"failed\":%d}\n", held, failed);
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "check", 5) != 0) continue;
    int passing = 0;
    for (int i = 0; i < held; i++) {
      int fd = fds[i];
      char c = 'p';
      if (write(fd, &c, 1) != 1) continue;
      struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    /* Collect the echoes; a session that never echoes within 10 s is not passing. */
    double until = now_s() + 10;
    while (passing < held && now_s() < until) {
      int n = epoll_wait(ep, events, 512, 200);
      for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        ssize_t r = read(fd, buf, sizeof buf);
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        if (r > 0) passing++;
      }
    }
    printf("{\"passing\":%d}\n", passing);
    fflush(stdout);
  }
  for (int i = 0; i < held; i++) close(fds[i]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: see the header of client.c\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  memset(buf, 'y', sizeof buf);
  target.sin_family = AF_INET;
  target.sin_port = htons((unsigned short)atoi(argv[2]));
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const char *host = getenv("BENCH_TARGET_HOST");
  if (host != NULL && inet_pton(AF_INET, host, &target.sin_addr) != 1) {
    fprintf(stderr, "BENCH_TARGET_HOST %s: not an IPv4 address\n", host);
    return 2;
  }
  const char *mode = argv[1];
  if (strcmp(mode, "bulk-up") == 0 || strcmp(mode, "bulk-down") == 0) {
    if (argc < 5) return 2;
    alarm((unsigned)atoi(argv[4]));
    return bulk(mode[5] == 'u', atoll(argv[3]));
  }
  if (strcmp(mode, "rate") == 0) {
    if (argc < 6) return 2;
    alarm((unsigned)atoi(argv[5]));
    return rate(atoi(argv[3]), atoi(argv[4]));
  }
  if (strcmp(mode, "hold") == 0) {
    if (argc < 5) return 2;
    alarm((unsigned)atoi(argv[4]));
    return hold(atoi(argv[3]));
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
