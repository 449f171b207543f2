// cputime ARGV...: runs ARGV with this process's stdio, and when it has exited
// appends one line to stderr: "cputime: <user+sys µs of it and its children> <wall µs> <peak RSS KiB>"
// (the peak is the largest of the process and the children it waited for: ru_maxrss).
// CPU time is the bench's second figure: on a busy machine wall time mostly
// measures the neighbours, while the CPU a hook burns is its own.
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: cputime ARGV...\n"); return 2; }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid == 0) { execvp(argv[1], argv + 1); perror(argv[1]); _exit(127); }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 2; }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  // Children the hook waited for are in RUSAGE_CHILDREN of the hook, which wait4 reports summed.
  long cpu = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
  long wall = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
  fprintf(stderr, "\ncputime: %ld %ld %ld\n", cpu, wall, ru.ru_maxrss);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
