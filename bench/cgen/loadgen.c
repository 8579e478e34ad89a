// The echo, broadcast and handshake scenarios' load generator in C (bench/run.mjs's default; the
// Node one with --gen=node): the same jobs as loadgen.mjs's echo(), broadcast() and handshakes(),
// done by one epoll loop, so that a Node generator's own costs (its parsing, its buffers, its GC,
// a read per frame, a promise per step) are not what a row measures.
//
//   cgen MODE PORT PATH CONNS SIZE WINDOW TEXT RAW WARMUP_MS MEASURE_MS
//
// MODE echo: pipelined masked frames, WINDOW in flight per connection, every echo validated.
// MODE broadcast: connection 0 sends masked frames with WINDOW broadcasts in flight (sent and not
// yet received by every connection, counted as loadgen.mjs counts them), and every connection,
// the sender included, must receive every one of them.
// MODE paced: masked frames at a fixed total rate (WINDOW messages/s), spread evenly over time and
// round-robin over the connections by a busy-polling loop (its core stays full, as loadgen.mjs's
// paced() keeps its own); each message timed from its send() to the read that completes its echo.
// After the drain it prints "L <samples> <p50> <p90> <p99> <p99.9> <max> <offered> <skipped>"
// (times in ms, for the messages sent inside the measurement window; offered: messages due in the
// window; skipped: of those, not sent because their connection already had 1,024 in flight).
// MODE handshakes: CONNS cycles at a time, each a new TCP connection: the upgrade (101 and its
// Sec-WebSocket-Accept checked), a masked close 1000 sent, the server's close frame read (code
// 1000 checked), the client's FIN, the server's FIN (or a reset); counted once the socket is closed (SIZE,
// WINDOW and TEXT unused). Counts are cycles, "D <cycles ended> <cycles begun>" once every cycle
// begun has ended (10 s at most). Each cycle's socket is bound to the next of 64 source addresses.
// TEXT 1 sends text frames; RAW 1 expects the frames back as sent (raw TCP forwards them masked).
// Prints one line per event on stdout: "A <count>" when the warm-up ends (WARMUP_MS, and until
// every connection has received 2 × WINDOW frames, at most 15 s more), "B <count>" when the
// measurement ends (count: frames received so far, over all connections), "D <count> <sent>"
// once every message sent has come back (every broadcast reached every connection) and every
// connection has done its closing handshake (a raw broadcast's connections are just closed: raw
// TCP would forward every close frame to every socket); "E <reason>" and exit 1 on any failure.
// Checks: FIN set, RSV bits clear, the opcode sent, masking only for RAW, the exact length, the
// payload bytes of every 16th frame received (every 4th from 64 KiB, every 64th broadcast),
// never more frames than messages sent, nothing closed early. Pings are answered with pongs
// (between frames). Bounded: 5 s per handshake, 20 s to drain, 10 s for the closing handshakes;
// it dies with its parent. The warm-up's extra condition holds for broadcasts as soon as 2 × WINDOW
// broadcasts have reached everyone (loadgen.mjs's broadcast() waits WARMUP_MS only).

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/time.h>

static const unsigned char KEY[4] = {0x37, 0xfa, 0x21, 0x3d};
// The accept value for the key every upgrade sends (RFC 6455 section 1.3's own example). One key
// for every connection (loadgen.mjs rotates 64): no server here caches its accept values.
static const char ACCEPT[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
// A close 1000, masked with KEY.
static const unsigned char CLOSE_1000[8] = {0x88, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x03 ^ 0x37, 0xe8 ^ 0xfa};

typedef struct {
  int fd;
  long inflight;            // echo: messages sent and not yet echoed
  unsigned long sendOff;    // bytes of the endless frame stream written so far
  unsigned long sendEnd;    // bytes of it owed
  int wantOut;              // EPOLLOUT armed
  unsigned char hdr[14];
  int hdrHave, hdrNeed;     // header bytes held / needed (0: between frames)
  unsigned long payLeft, payOff;
  int checking, opcode;     // the frame being read: payload checked, its opcode
  unsigned char ctl[125];   // a control frame's payload (ping, close)
  unsigned char pong[131];  // a pong owed to the server, sent at the next frame boundary
  int pongLen, pongOff;
  unsigned long seen;       // data frames received (a broadcast: broadcasts received)
  int closing, closeSeen;
  double *times;            // paced: send times of the messages in flight (a ring of PACED_CAP)
  unsigned tHead, tTail;
} Conn;

// paced: messages in flight per connection at most (a power of two: the ring of send times).
#define PACED_CAP 1024

static Conn *conns;
static int nconns, epfd;
static unsigned long size, window, flen, batchLen, total, checkEvery;
static int text, raw, broadcast, paced;
static const char *path;
static unsigned long sentB;  // broadcasts sent by connection 0
static unsigned char *batch, *expected;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("E ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  exit(1);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// Reports the count so far as the window's start ('A') or end ('B') (see the header).
static void mark(char tag) {
  printf("%c %lu\n", tag, total);
  fflush(stdout);
}

static void arm(Conn *c, int out) {
  if (c->wantOut == out) return;
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
  c->wantOut = out;
}

static void flush(Conn *c) {
  for (;;) {
    // A pong owed goes out between two frames (all frames are flen bytes long).
    if (c->pongLen > 0 && (c->pongOff > 0 || c->sendOff % flen == 0)) {
      ssize_t w = send(c->fd, c->pong + c->pongOff, c->pongLen - c->pongOff, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          arm(c, 1);
          return;
        }
        fail("write: %s", strerror(errno));
      }
      c->pongOff += (int)w;
      if (c->pongOff == c->pongLen) c->pongLen = c->pongOff = 0;
      continue;
    }
    if (c->sendOff >= c->sendEnd) break;
    unsigned long o = c->sendOff % batchLen;
    unsigned long n = batchLen - o;
    if (n > c->sendEnd - c->sendOff) n = c->sendEnd - c->sendOff;
    ssize_t w = send(c->fd, batch + o, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        arm(c, 1);
        return;
      }
      fail("write: %s", strerror(errno));
    }
    c->sendOff += (unsigned long)w;
  }
  arm(c, 0);
}

// Parses a chunk; returns the number of data frames completed.
static long parse(Conn *c, const unsigned char *p, size_t n) {
  long done = 0;
  size_t i = 0;
  while (i < n) {
    if (c->payLeft == 0 && c->hdrNeed == 0) {
      c->hdrHave = 0;
      c->hdrNeed = 2;
    }
    if (c->hdrNeed > 0) {
      while (i < n && c->hdrHave < c->hdrNeed) {
        c->hdr[c->hdrHave++] = p[i++];
        if (c->hdrHave == 2) {
          int len7 = c->hdr[1] & 0x7f;
          c->hdrNeed = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
        }
      }
      if (c->hdrHave < c->hdrNeed) break;
      c->hdrNeed = 0;
      unsigned char b0 = c->hdr[0], b1 = c->hdr[1];
      int opcode = b0 & 0x0f, masked = (b1 & 0x80) != 0, len7 = b1 & 0x7f;
      unsigned long len = len7;
      if (len7 == 126) len = ((unsigned long)c->hdr[2] << 8) | c->hdr[3];
      else if (len7 == 127) {
        len = 0;
        for (int k = 2; k < 10; k++) len = (len << 8) | c->hdr[k];
      }
      if (!(b0 & 0x80)) fail("a frame without FIN");
      if (b0 & 0x70) fail("RSV bits set");
      if (masked && !raw) fail("a masked frame from the server");
      c->opcode = opcode;
      if (opcode >= 8) {
        if (opcode != 8 && opcode != 9 && opcode != 10) fail("unknown control opcode %d", opcode);
        if (len > 125) fail("a control frame of %lu bytes", len);
      } else {
        if (opcode != (text ? 1 : 2)) fail("opcode %d, expected %d", opcode, text ? 1 : 2);
        if (len != size) fail("a frame of %lu bytes, expected %lu", len, size);
        c->checking = (c->seen % checkEvery) == 0;
      }
      c->payLeft = len;
      c->payOff = 0;
      if (len > 0) continue;
    }
    size_t take = n - i;
    if (take > c->payLeft) take = c->payLeft;
    if (c->opcode >= 8) memcpy(c->ctl + c->payOff, p + i, take);
    else if (c->checking && memcmp(p + i, expected + c->payOff, take) != 0) fail("payload bytes received differ from those sent");
    i += take;
    c->payOff += take;
    c->payLeft -= take;
    if (c->payLeft > 0) continue;
    if (c->opcode < 8) {
      c->seen++;
      done++;
      if (broadcast && c->seen > sentB) fail("a connection received more broadcasts than were sent");
      continue;
    }
    int len = (int)c->payOff;
    if (c->hdr[1] & 0x80) {
      // A masked (raw) control frame: its key is the last 4 header bytes.
      const unsigned char *k = c->hdr + c->hdrHave - 4;
      for (int j = 0; j < len; j++) c->ctl[j] ^= k[j & 3];
    }
    if (c->opcode == 8) {
      if (!c->closing) fail("the server closed a connection: close %d %.*s", len >= 2 ? (c->ctl[0] << 8) | c->ctl[1] : 1005, len > 2 ? len - 2 : 0, (const char *)c->ctl + 2);
      c->closeSeen = 1;
    } else if (c->opcode == 9 && !c->closing && c->pongOff == 0) {
      // A heartbeat ping: answered with a masked pong carrying its payload (the latest one). A
      // ping that comes while a pong is half written is left unanswered: that pong goes on.
      c->pong[0] = 0x8a;
      c->pong[1] = 0x80 | len;
      memcpy(c->pong + 2, KEY, 4);
      for (int j = 0; j < len; j++) c->pong[6 + j] = c->ctl[j] ^ KEY[j & 3];
      c->pongLen = 6 + len;
      c->pongOff = 0;
      flush(c);
    }
  }
  return done;
}

// Whether the response head (NUL-terminated) has a Sec-WebSocket-Accept header (its name in any
// case) whose value, spaces and tabs around it left out, is exactly ACCEPT.
static int accept_ok(const char *head) {
  static const char NAME[] = "\r\nsec-websocket-accept:";
  for (const char *p = strcasestr(head, NAME); p != NULL; p = strcasestr(p + 1, NAME)) {
    const char *v = p + sizeof NAME - 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strlen(ACCEPT);
    if (strncmp(v, ACCEPT, n) != 0) return 0;
    v += n;
    while (*v == ' ' || *v == '\t') v++;
    return v[0] == '\r' && v[1] == '\n';
  }
  return 0;
}

// The upgrade request every connection sends (RFC 6455 section 1.3's example key: its accept value
// is known); returns its length.
static int upgrade_request(char *req, size_t cap, int port) {
  int rl = snprintf(req, cap,
                    "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                    path, port);
  if (rl >= (int)cap) fail("path too long");
  return rl;
}

static int connect_one(int port, Conn *c, unsigned char *rest, size_t *restLen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A target that accepts and never answers fails the handshake in 5 s, not never.
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("connect: %s", strerror(errno));
  char req[512];
  int rl = upgrade_request(req, sizeof req, port);
  if (send(fd, req, rl, MSG_NOSIGNAL) != rl) fail("handshake write: %s", strerror(errno));
  char head[4096];
  size_t have = 0;
  char *end = NULL;
  while (end == NULL) {
    if (have == sizeof head - 1) fail("handshake answer too long");
    ssize_t r = read(fd, head + have, sizeof head - 1 - have);
    if (r <= 0) fail("handshake read: %s", r == 0 ? "closed" : strerror(errno));
    have += (size_t)r;
    head[have] = 0;
    end = strstr(head, "\r\n\r\n");
  }
  if (strncmp(head, "HTTP/1.1 101", 12) != 0) fail("handshake answered: %.40s", head);
  if (!accept_ok(head)) fail("missing or wrong Sec-WebSocket-Accept");
  size_t used = (size_t)(end + 4 - head);
  *restLen = have - used;
  memcpy(rest, head + used, *restLen);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  c->fd = fd;
  return fd;
}

// ---- handshakes: open + close cycles ------------------------------------------------------------

typedef struct {
  int fd, state;  // 0 connecting, 1 reading the 101, 2 reading the close frame, 3 waiting for EOF
  char buf[4096];
  int have;
  double deadline;
} Cycle;


#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
// Source addresses the cycles take in turn (127.0.0.1 to 127.0.0.SOURCES, all on loopback). With
// one, every connect() searches the ephemeral ports for a 4-tuple not held by the tens of thousands
// of earlier connections in TIME_WAIT on this side (the client sends its FIN first: see
// bench/README.md): that search (__inet_hash_connect, tcp_twsk_unique) took a third of this
// process's CPU at 15k cycles/s. A storm of real clients comes from many addresses and has none.
#define SOURCES 64
static unsigned sourceTurn;

static unsigned long begun;  // handshake cycles started

static void cycle_start(Cycle *c, int port) {
  begun++;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // The port is still chosen by connect() (for the 4-tuple), not by bind().
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  struct sockaddr_in from = {.sin_family = AF_INET};
  from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + sourceTurn++ % SOURCES);
  if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0) fail("bind: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) fail("connect: %s", strerror(errno));
  c->fd = fd;
  c->state = 0;
  c->have = 0;
  c->deadline = now_ms() + 5000;
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
}

// Sends all of `p` on a fresh socket (a few bytes: a short write would be a broken peer).
static void send_all(Cycle *c, const void *p, size_t n, const char *what) {
  ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
  if (w != (ssize_t)n) fail("%s write: %s", what, w < 0 ? strerror(errno) : "short");
}

// Advances one cycle on an epoll event; returns 1 once it has ended (socket closed).
static int cycle_step(Cycle *c, unsigned events, int port) {
  if (c->state == 0) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return 0;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) fail("connect: %s", strerror(err));
    char req[512];
    int rl = upgrade_request(req, sizeof req, port);
    send_all(c, req, (size_t)rl, "handshake");
    c->state = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    return 0;
  }
  for (;;) {
    if (c->have == (int)sizeof c->buf - 1) fail("handshake answer too long");
    ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - 1 - c->have);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      if (c->state == 3) r = 0;  // a reset after the close frame ends the cycle as a FIN would
      else fail("read: %s", strerror(errno));
    }
    if (r == 0) {
      if (c->state != 3) fail(c->state == 1 ? "the server closed before its 101" : "the server closed before its close frame");
      close(c->fd);  // also leaves the epoll set
      return 1;
    }
    if (c->state == 3) fail("data after the server's close frame");
    c->have += (int)r;
    c->buf[c->have] = 0;
    if (c->state == 1) {
      char *end = strstr(c->buf, "\r\n\r\n");
      if (end == NULL) continue;
      if (strncmp(c->buf, "HTTP/1.1 101", 12) != 0) fail("handshake answered: %.40s", c->buf);
      if (!accept_ok(c->buf)) fail("missing or wrong Sec-WebSocket-Accept");
      if (end + 4 != c->buf + c->have) fail("data before the client's first frame");
      c->have = 0;
      send_all(c, CLOSE_1000, sizeof CLOSE_1000, "close");
      c->state = 2;
      continue;
    }
    // state 2: the server's close frame (masked only from raw TCP, which echoes ours).
    if (c->have < 2) continue;
    unsigned char *f = (unsigned char *)c->buf;
    int masked = (f[1] & 0x80) != 0, len = f[1] & 0x7f, hl = 2 + (masked ? 4 : 0);
    if (f[0] != 0x88) fail("expected a close frame, got first byte 0x%02x", f[0]);
    if (masked && !raw) fail("a masked frame from the server");
    if (len > 125) fail("a close frame of %d bytes", len);
    if (c->have < hl + len) continue;
    if (c->have > hl + len) fail("data after the server's close frame");
    unsigned char code[2] = {0, 0};
    for (int j = 0; j < 2 && j < len; j++) code[j] = f[hl + j] ^ (masked ? f[2 + j] : 0);
    int got = len >= 2 ? (code[0] << 8) | code[1] : 1005;
    if (got != 1000) fail("the server answered close 1000 with %d", got);
    if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN) fail("shutdown: %s", strerror(errno));
    c->state = 3;
  }
}

static int run_handshakes(int port, double warmup, double measure) {
  Cycle *cycles = calloc(nconns, sizeof(Cycle));
  int active = nconns;
  for (int i = 0; i < nconns; i++) cycle_start(&cycles[i], port);
  double t0 = now_ms(), deadline = t0 + warmup, nextCheck = t0 + 50;
  int phase = 0;  // 0 warm-up, 1 measuring, 2 finishing
  struct epoll_event evs[256];
  for (;;) {
    double t = now_ms();
    if (t >= deadline) {
      if (phase == 0) {
        mark('A');
        phase = 1;
        deadline = t + measure;
      } else if (phase == 1) {
        mark('B');
        phase = 2;
        deadline = t + 10000;
      } else fail("%d handshake cycles did not finish (within 10 s)", active);
    }
    if (phase == 2 && active == 0) {
      printf("D %lu %lu\n", total, begun);
      fflush(stdout);
      return 0;
    }
    if (t >= nextCheck) {
      nextCheck = t + 50;
      for (int i = 0; i < nconns; i++)
        if (cycles[i].fd >= 0 && t > cycles[i].deadline) fail("a handshake cycle took over 5 s (state %d)", cycles[i].state);
    }
    int wait = (int)(deadline - now_ms());
    if (wait > 20) wait = 20;
    if (wait < 0) wait = 0;
    int n = epoll_wait(epfd, evs, 256, wait);
    if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
    for (int e = 0; e < n; e++) {
      Cycle *c = evs[e].data.ptr;
      if (c->fd < 0 || !cycle_step(c, evs[e].events, port)) continue;
      total++;
      c->fd = -1;
      if (phase < 2) cycle_start(c, port);
      else active--;
    }
  }
}

// Broadcast: tops connection 0's stream up to WINDOW broadcasts in flight, a broadcast counted
// as received once every connection has had it on average (as loadgen.mjs's pump()).
static void pump(void) {
  unsigned long landed = total / (unsigned long)nconns;
  if (sentB - landed >= window) return;
  unsigned long room = window - (sentB - landed);
  sentB += room;
  conns[0].sendEnd += room * flen;
  flush(&conns[0]);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

// The p-th percentile of n sorted samples, as loadgen.mjs's paced() takes it.
static double pct(const double *v, unsigned long n, double p) {
  if (n == 0) return 0.0 / 0.0;
  unsigned long i = (unsigned long)(p / 100 * n);
  return v[i < n - 1 ? i : n - 1];
}

static int drained(void) {
  if (broadcast) return total == sentB * (unsigned long)nconns;
  for (int i = 0; i < nconns; i++)
    if (conns[i].inflight != 0) return 0;
  return 1;
}

// "D <received> <sent>": sent counted on the sending side (frames owed to the sockets, or
// broadcasts triggered), not derived from what came back.
static void done_line(void) {
  unsigned long sent = 0;
  if (broadcast) sent = sentB;
  else
    for (int i = 0; i < nconns; i++) sent += conns[i].sendEnd / flen;
  printf("D %lu %lu\n", total, sent);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 11) {
    fprintf(stderr, "usage: cgen echo|broadcast|paced|handshakes PORT PATH CONNS SIZE WINDOW TEXT RAW WARMUP_MS MEASURE_MS\n");
    return 2;
  }
  // Dies with its parent (the load generator), never left running on its own.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  int handshakes = strcmp(argv[1], "handshakes") == 0;
  if (strcmp(argv[1], "echo") == 0) broadcast = 0;
  else if (strcmp(argv[1], "broadcast") == 0) broadcast = 1;
  else if (strcmp(argv[1], "paced") == 0) paced = 1;
  else if (!handshakes) fail("unknown mode %s", argv[1]);
  int port = atoi(argv[2]);
  path = argv[3];
  nconns = atoi(argv[4]);
  size = strtoul(argv[5], NULL, 10);
  window = strtoul(argv[6], NULL, 10);
  text = atoi(argv[7]);
  raw = atoi(argv[8]);
  double warmup = atof(argv[9]), measure = atof(argv[10]);
  if (nconns <= 0 || window == 0) fail("bad arguments");
  if (handshakes) {
    epfd = epoll_create1(0);
    return run_handshakes(port, warmup, measure);
  }
  checkEvery = broadcast ? 64 : size >= 65536 ? 4 : 16;

  // The payload (loadgen's payloadOf: lowercase ASCII, valid UTF-8 for text), its masked frame,
  // and `window` copies of the frame back to back.
  unsigned char *payload = malloc(size + 1);
  for (unsigned long i = 0; i < size; i++) payload[i] = 97 + ((i * 7 + (i >> 8)) % 26);
  unsigned long hl = size < 126 ? 6 : size < 65536 ? 8 : 14;
  flen = hl + size;
  unsigned char *frame = malloc(flen);
  frame[0] = 0x80 | (text ? 1 : 2);
  if (size < 126) frame[1] = 0x80 | size;
  else if (size < 65536) {
    frame[1] = 0x80 | 126;
    frame[2] = size >> 8;
    frame[3] = size & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    for (int k = 0; k < 8; k++) frame[2 + k] = (size >> (8 * (7 - k))) & 0xff;
  }
  memcpy(frame + hl - 4, KEY, 4);
  for (unsigned long i = 0; i < size; i++) frame[hl + i] = payload[i] ^ KEY[i & 3];
  expected = raw ? frame + hl : payload;
  // paced: WINDOW is the rate; 64 frames back to back are as many as one write ever sends.
  unsigned long copies = paced ? 64 : window;
  batchLen = flen * copies;
  batch = malloc(batchLen);
  for (unsigned long k = 0; k < copies; k++) memcpy(batch + k * flen, frame, flen);

  epfd = epoll_create1(0);
  conns = calloc(nconns, sizeof(Conn));
  static unsigned char buf[1 << 18];
  for (int i = 0; i < nconns; i++) {
    Conn *c = &conns[i];
    size_t restLen;
    connect_one(port, c, buf, &restLen);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    if (restLen > 0) fail("data before the first message");
  }
  double rate = (double)window, mStart = 1e300, mEnd = 1e300;
  unsigned long sent = 0, overflow = 0, sentAtStart = 0, overflowAtStart = 0, rr = 0, nS = 0;
  double *samples = NULL;
  unsigned long samplesCap = 0;
  int *pend = NULL, *touched = NULL;
  if (paced) {
    samplesCap = (unsigned long)(rate * (measure + 1000) / 1000) + 1024;
    samples = malloc(samplesCap * sizeof(double));
    pend = calloc(nconns, sizeof(int));
    touched = malloc(nconns * sizeof(int));
    for (int i = 0; i < nconns; i++) conns[i].times = malloc(PACED_CAP * sizeof(double));
  }
  if (broadcast) pump();
  else if (!paced)
    for (int i = 0; i < nconns; i++) {
      Conn *c = &conns[i];
      c->inflight = (long)window;
      c->sendEnd = batchLen;
      flush(c);
    }

  double t0 = now_ms();
  int phase = 0;  // 0 warm-up, 1 measuring, 2 draining, 3 closing
  int running = 1;
  double deadline = t0 + warmup;
  struct epoll_event evs[256];
  for (;;) {
    double t = now_ms();
    if (phase == 0 && !paced && t >= deadline && t < t0 + warmup + 15000) {
      // The warm-up also lasts until every connection has received 2 × WINDOW frames: with
      // hundreds of connections and large messages, the first rounds (fresh buffers, page faults,
      // code not yet optimised) are far slower than the steady state the row measures.
      int warm = 1;
      for (int i = 0; i < nconns && warm; i++) warm = conns[i].seen >= 2 * window;
      if (!warm) deadline = t + 5;
    }
    if (t >= deadline) {
      if (phase == 0) {
        mark('A');
        phase = 1;
        deadline = t + measure;
        mStart = t;
        sentAtStart = sent;
        overflowAtStart = overflow;
      } else if (phase == 1) {
        mark('B');
        phase = 2;
        running = 0;
        deadline = t + 20000;
        mEnd = t;
      } else if (phase == 2) {
        if (broadcast) {
          int short_ = 0;
          for (int i = 0; i < nconns; i++) short_ += conns[i].seen != sentB;
          fail("%d of %d connections did not receive all %lu broadcasts (within 20 s)", short_, nconns, sentB);
        }
        long missing = 0;
        for (int i = 0; i < nconns; i++) missing += conns[i].inflight;
        fail("%ld messages were never echoed back (within 20 s)", missing);
      } else {
        int open = 0;
        for (int i = 0; i < nconns; i++) open += !conns[i].closeSeen;
        fail("%d connections got no close frame back (within 10 s)", open);
      }
    }
    if (paced && running) {
      // The messages due by now, each to the next connection in turn; one write per connection.
      // After the phase change above: the turn that opens the window sends inside it, and none
      // is sent in the turn that closes it, so samples = offered - skipped.
      unsigned long due = (unsigned long)((t - t0) * rate / 1000);
      int nt = 0;
      for (; sent < due; sent++) {
        int i = (int)rr;
        rr = rr + 1 == (unsigned long)nconns ? 0 : rr + 1;
        Conn *c = &conns[i];
        if (c->inflight >= PACED_CAP || pend[i] >= 64) {
          overflow++;
          continue;
        }
        if (pend[i] == 0) touched[nt++] = i;
        pend[i]++;
        c->inflight++;
        c->times[c->tTail] = t;
        c->tTail = (c->tTail + 1) & (PACED_CAP - 1);
      }
      for (int j = 0; j < nt; j++) {
        Conn *c = &conns[touched[j]];
        c->sendEnd += (unsigned long)pend[touched[j]] * flen;
        pend[touched[j]] = 0;
        flush(c);
      }
    }
    if (phase == 2 && drained()) {
      if (paced) {
        qsort(samples, nS, sizeof(double), cmp_double);
        printf("L %lu %.6f %.6f %.6f %.6f %.6f %lu %lu\n", nS, pct(samples, nS, 50), pct(samples, nS, 90), pct(samples, nS, 99), pct(samples, nS, 99.9),
               nS ? samples[nS - 1] : 0.0 / 0.0, sent - sentAtStart, overflow - overflowAtStart);
        fflush(stdout);
      }
      if (broadcast && raw) {
        for (int i = 0; i < nconns; i++) close(conns[i].fd);
        done_line();
        return 0;
      }
      // Closing handshakes: a masked close 1000 on every connection.
      for (int i = 0; i < nconns; i++) {
        conns[i].closing = 1;
        if (conns[i].pongLen > 0) fail("a pong still unsent at the close");
        if (send(conns[i].fd, CLOSE_1000, sizeof CLOSE_1000, MSG_NOSIGNAL) != sizeof CLOSE_1000) fail("close write: %s", strerror(errno));
      }
      phase = 3;
      deadline = now_ms() + 10000;
    }
    if (phase == 3) {
      int all = 1;
      for (int i = 0; i < nconns && all; i++) all = conns[i].closeSeen;
      if (all) {
        for (int i = 0; i < nconns; i++) close(conns[i].fd);
        done_line();
        return 0;
      }
    }
    int wait = (int)(deadline - now_ms());
    if (wait > 20) wait = 20;
    if (wait < 0 || (paced && running)) wait = 0;  // paced: polls, so that messages leave on time
    int n = epoll_wait(epfd, evs, 256, wait);
    if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
    for (int e = 0; e < n; e++) {
      Conn *c = evs[e].data.ptr;
      if (evs[e].events & EPOLLOUT) flush(c);
      if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r < 0) {
          if (errno == EAGAIN || errno == EINTR) continue;
          if (c->closeSeen) {
            epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
            continue;
          }
          fail("read: %s", strerror(errno));
        }
        if (r == 0) {
          if (c->closeSeen) {
            epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
            continue;
          }
          fail("connection closed unexpectedly by the server");
        }
        long k = parse(c, buf, (size_t)r);
        if (k == 0) continue;
        total += (unsigned long)k;
        if (broadcast) {
          if (running) pump();
          continue;
        }
        if (paced) {
          // Every frame this read completed arrived now (as loadgen.mjs times a chunk's frames).
          if (k > c->inflight) fail("more echoes than messages sent");
          double now = now_ms();
          for (long j = 0; j < k; j++) {
            double ts = c->times[c->tHead];
            c->tHead = (c->tHead + 1) & (PACED_CAP - 1);
            if (ts >= mStart && ts < mEnd && nS < samplesCap) samples[nS++] = now - ts;
          }
          c->inflight -= k;
          continue;
        }
        c->inflight -= k;
        if (c->inflight < 0) fail("more echoes than messages sent");
        if (running) {
          c->inflight += k;
          c->sendEnd += (unsigned long)k * flen;
          flush(c);
        }
      }
    }
  }
}
