/* progress.c - the phases of a commit and the meter of progress.h. */
#include "progress.h"

#include <string.h>

const char *const progress_phases[PROGRESS_NPHASES] = {
	"check", "copy", "flush", "relink", "cleanup",
};

/* Share of the whole commit per phase: the copy is the long part, the
 * others are a few file operations each. */
static const double phase_weight[PROGRESS_NPHASES] = {
	0.02, 0.90, 0.04, 0.03, 0.01,
};

/* Sliding window of running time the rate is measured over. */
#define RATE_WINDOW_S 3.0

int progress_phase_index(const char *phase)
{
	for (int i = 0; phase && i < PROGRESS_NPHASES; i++)
		if (!strcmp(phase, progress_phases[i]))
			return i;
	return -1;
}

void progress_meter_init(struct progress_meter *m, double now)
{
	memset(m, 0, sizeof(*m));
	m->t0 = now;
	m->pause_t = -1;
	m->phase = -1;
	m->copy_t1 = -1;
}

double progress_meter_running(const struct progress_meter *m, double now)
{
	double p = m->paused + (m->pause_t >= 0 ? now - m->pause_t : 0);
	double r = now - m->t0 - p;
	return r > 0 ? r : 0;
}

void progress_meter_pause(struct progress_meter *m, bool on, double now)
{
	if (on && m->pause_t < 0) {
		m->pause_t = now;
	} else if (!on && m->pause_t >= 0) {
		m->paused += now - m->pause_t;
		m->pause_t = -1;
	}
}

static void sample(struct progress_meter *m, double t)
{
	int last = (m->head + PROGRESS_WINDOW - 1) % PROGRESS_WINDOW;
	/* Samples closer than a tenth of a second replace the last one. */
	if (m->ns && t - m->st[last] < 0.1) {
		m->sb[last] = m->bytes;
		return;
	}
	m->st[m->head] = t;
	m->sb[m->head] = m->bytes;
	m->head = (m->head + 1) % PROGRESS_WINDOW;
	if (m->ns < PROGRESS_WINDOW)
		m->ns++;
}

void progress_meter_feed(struct progress_meter *m,
			 const struct progress_event *ev, double now)
{
	int i = progress_phase_index(ev->phase);
	double t = progress_meter_running(m, now);
	int copy = progress_phase_index("copy");
	if (i < 0)
		return;
	if (i != m->phase) {
		if (m->phase == copy && m->copy_t1 < 0)
			m->copy_t1 = t;
		if (i == copy)
			m->copy_t0 = t;
		m->phase = i;
	}
	m->seen[i] = true;
	m->done = ev->done;
	m->total = ev->total;
	if (i == copy) {
		m->bytes = ev->done;
		m->bytes_total = ev->total;
		sample(m, t);
	}
	/* Phases before this one are over, skipped ones too. */
	double f = 0;
	for (int k = 0; k < i; k++)
		f += phase_weight[k];
	double in = ev->total ? (double)ev->done / (double)ev->total : 0;
	f += phase_weight[i] * (in > 1 ? 1 : in);
	if (f > m->fraction)
		m->fraction = f > 1 ? 1 : f;
}

double progress_meter_rate(const struct progress_meter *m, double now)
{
	double t = progress_meter_running(m, now);
	if (!m->bytes)
		return 0;
	if (m->copy_t1 >= 0 || !m->ns) {      /* the copy is over */
		double d = (m->copy_t1 >= 0 ? m->copy_t1 : t) - m->copy_t0;
		return d > 0 ? (double)m->bytes / d : 0;
	}
	/* The oldest sample within the window, up to now. */
	int last = (m->head + PROGRESS_WINDOW - 1) % PROGRESS_WINDOW;
	int k = last;
	for (int n = 1; n < m->ns; n++) {
		int prev = (k + PROGRESS_WINDOW - 1) % PROGRESS_WINDOW;
		if (t - m->st[prev] > RATE_WINDOW_S)
			break;
		k = prev;
	}
	double t0 = m->st[k];
	uint64_t b0 = m->sb[k];
	if (k == last) {           /* one sample: since the copy began */
		t0 = m->copy_t0;
		b0 = 0;
	}
	/* Up to the last report, so the moment a poll falls between two
	 * reports does not swing the rate; past a second without one the
	 * copy is slow or stalled, and the rate shows it. */
	double end = m->st[last];
	if (t - end > 1.0)
		end = t;
	/* Less than a second of reports (the copy's first burst, before a
	 * rate limit's first pause): the average since the copy began. */
	if (end - t0 < 1.0) {
		t0 = m->copy_t0;
		b0 = 0;
		end = t;
	}
	double d = end - t0;
	if (d < 0.05)
		d = 0.05;
	return (double)(m->bytes - b0) / d;
}

double progress_meter_eta(const struct progress_meter *m, double now)
{
	int copy = progress_phase_index("copy");
	if (m->phase > copy)
		return 0;
	double r = progress_meter_rate(m, now);
	if (m->phase < copy || r <= 0 || m->bytes_total < m->bytes)
		return -1;
	return (double)(m->bytes_total - m->bytes) / r;
}
