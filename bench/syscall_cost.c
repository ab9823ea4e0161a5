// bench/syscall_cost.c: what one system call of each kind the two proxies make per keep-alive
// request costs on this machine, when it finds nothing to do (BENCHMARKS.md, "TLS beside
// nginx"). tokengate re-arms the client's socket (epoll_ctl MOD) and tries its upstream's read
// once (recv, EAGAIN); nginx reads its TLS client once more (read, EAGAIN) and asks the upstream
// socket for its error (getsockopt SO_ERROR). getpid is the bare cost of entering the kernel.
//
//   cc -O2 bench/syscall_cost.c -o /tmp/syscall_cost && taskset -c 0 /tmp/syscall_cost
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { calls = 300000, rounds = 3 };

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
  // A connected loopback pair; the accepted end non-blocking, registered edge-triggered as the
  // proxies register theirs.
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t length = sizeof at;
  if (bind(listener, (struct sockaddr*)&at, sizeof at) != 0 || listen(listener, 1) != 0 ||
      getsockname(listener, (struct sockaddr*)&at, &length) != 0)
    return perror("listen"), 1;
  int peer = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(peer, (struct sockaddr*)&at, sizeof at) != 0)
    return perror("connect"), 1;
  int s = accept(listener, NULL, NULL);
  fcntl(s, F_SETFL, O_NONBLOCK);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = s};
  epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);

  char buffer[16];
  int error = 0;
  socklen_t error_length = sizeof error;
  for (int r = 0; r < rounds; ++r) {
    double t = seconds();
    for (int i = 0; i < calls; ++i)
      (void)getpid();
    const double bare = (seconds() - t) / calls * 1e6;
    t = seconds();
    for (int i = 0; i < calls; ++i)
      (void)getsockopt(s, SOL_SOCKET, SO_ERROR, &error, &error_length);
    const double sockopt = (seconds() - t) / calls * 1e6;
    t = seconds();
    for (int i = 0; i < calls; ++i)
      (void)read(s, buffer, sizeof buffer);
    const double read_empty = (seconds() - t) / calls * 1e6;
    t = seconds();
    for (int i = 0; i < calls; ++i)
      (void)recv(s, buffer, sizeof buffer, 0);
    const double recv_empty = (seconds() - t) / calls * 1e6;
    t = seconds();
    for (int i = 0; i < calls; ++i)
      (void)epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev);
    const double rearm = (seconds() - t) / calls * 1e6;
    printf("us per call: getpid %.3f, getsockopt(SO_ERROR) %.3f, read (EAGAIN) %.3f, recv (EAGAIN) "
           "%.3f, epoll_ctl(MOD) %.3f; nginx's pair %.3f, tokengate's %.3f\n",
           bare, sockopt, read_empty, recv_empty, rearm, sockopt + read_empty, rearm + recv_empty);
  }
  return 0;
}
