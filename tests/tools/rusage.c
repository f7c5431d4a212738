/* rusage.c - run a command and report how it ended and what it cost.
 *
 *   rusage [-t SECONDS] OUTFILE COMMAND [ARG...]
 *
 * Writes one line to OUTFILE:
 *   "<exit|signal|timeout> <code> <maxrss_kb> <cpu_ms> <wall_ms>"
 * cpu_ms is the child's user + system time (all its threads): what bounds
 * the work a hostile input can cause, which the machine's load does not
 * inflate the way it does the wall time.
 * and exits with the command's exit code (128 + signal when killed).
 * -t kills the command (SIGKILL) after SECONDS of wall time (default 20) so
 * a test never hangs on, say, a FIFO opened for reading.
 *
 * Why a C tool and not /usr/bin/time or polling /proc/PID/status: wait4()
 * gives the peak RSS of exactly that child from the kernel (no sampling gap,
 * no extra package), and tells a signal apart from an exit code.  Built by
 * the test scripts that use it (tests/it/hostile.sh) with $CC.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child;

static void on_alarm(int sig)
{
	(void)sig;
	if (child > 0)
		kill(child, SIGKILL);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct rusage ru;
	unsigned limit = 20;
	int status, timed_out = 0, i = 1;
	long long t0;
	const char *kind;
	int code;
	FILE *out;

	if (argc > 2 && !strcmp(argv[1], "-t")) {
		limit = (unsigned)strtoul(argv[2], NULL, 10);
		i = 3;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: rusage [-t SECONDS] OUTFILE COMMAND [ARG...]\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	t0 = now_ms();
	child = fork();
	if (child < 0) {
		perror("fork");
		return 2;
	}
	if (child == 0) {
		execvp(argv[i + 1], argv + i + 1);
		fprintf(stderr, "rusage: %s: %s\n", argv[i + 1], strerror(errno));
		_exit(127);
	}
	alarm(limit);
	while (wait4(child, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("wait4");
			return 2;
		}
		timed_out = 1;      /* the alarm fired; the child is being killed */
	}
	alarm(0);
	if (WIFSIGNALED(status)) {
		kind = timed_out ? "timeout" : "signal";
		code = WTERMSIG(status);
	} else {
		kind = "exit";
		code = WEXITSTATUS(status);
	}
	out = fopen(argv[i], "w");
	if (!out) {
		perror(argv[i]);
		return 2;
	}
	fprintf(out, "%s %d %ld %lld %lld\n", kind, code, ru.ru_maxrss,
		(long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
		(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000,
		now_ms() - t0);
	fclose(out);
	return WIFSIGNALED(status) ? 128 + code : code;
}
