/*
 * Benchmark backend: writes an SSH identification at accept, then, by mode,
 *   sink   - reads and discards everything (closes on EOF),
 *   source - writes bytes as fast as the peer takes them (closes on EOF/error),
 *   echo   - writes back what it reads (tiny amounts only: scale checks).
 * Single-threaded epoll, non-blocking, loopback. Prints its port on stdout, then
 * runs until stdin closes (so it never outlives the driver).
 *
 *   backend <sink|source|echo>
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char BANNER[] = "SSH-2.0-BenchBackend_1.0\r\n";
enum mode { SINK, SOURCE, ECHO };

static char buf[256 * 1024];

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: backend <sink|source|echo> [ipv4 address]\n");
    return 2;
  }
  enum mode mode = strcmp(argv[1], "source") == 0 ? SOURCE : strcmp(argv[1], "echo") == 0 ? ECHO : SINK;
  memset(buf, 'x', sizeof buf);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* An address of a network namespace of the benchmark's own (bench/lib/transparent.ts). */
  if (argc >= 3 && inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) die("address");
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  socklen_t len = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &len);
  printf("%d\n", ntohs(addr.sin_port));
  fflush(stdout);

  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = 0; /* stdin: EOF means the driver is gone */
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);

  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == 0) {
        if (read(0, buf, sizeof buf) <= 0) return 0;
        continue;
      }
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (write(c, BANNER, sizeof BANNER - 1) < 0) {
            close(c);
            continue;
          }
          struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP | (mode == SOURCE ? EPOLLOUT : 0), .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      int closing = 0;
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          ssize_t r = read(fd, buf, sizeof buf);
          if (r > 0) {
            if (mode == ECHO && write(fd, buf, (size_t)r) < 0) closing = 1;
            if ((size_t)r < sizeof buf) break;
            continue;
          }
          if (r == 0 || (errno != EAGAIN && errno != EINTR)) closing = 1;
          break;
        }
      }
      if (!closing && mode == SOURCE && (events[i].events & EPOLLOUT)) {
        ssize_t w = write(fd, buf, sizeof buf);
        if (w < 0 && errno != EAGAIN && errno != EINTR) closing = 1;
      }
      if (closing) close(fd); /* close() also removes it from the epoll set */
    }
  }
}
