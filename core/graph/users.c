/* users.c - the users file (libyaml event parser); see users.h.
 *
 * The parser is strict: unknown keys, aliases, wrong node types and unknown
 * permission names are errors naming file, line and column, because a typo
 * in a users file would otherwise silently hide a VM from the conflict
 * check.  Positions from libyaml marks count characters, not bytes; the
 * repoint renderer converts them by walking the UTF-8 text.
 */
#include "users.h"
#include "formats/io/io.h"
#include "perm.h"
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define USERS_MAX_BYTES (16u << 20)
#define USERS_MAX_ENTRIES 100000

/* Where an entry's image scalar sits (character indexes from libyaml). */
struct img_mark {
	size_t start, end;
	bool plain;
};

struct uparse {
	const char *path;
	yaml_parser_t p;
	yaml_event_t ev;
	bool have_ev;
	struct users_file *uf;
	struct img_mark *marks;    /* parallel to uf->v, when wanted */
	struct img_err *e;
};

static int read_text(const char *path, char **text, size_t *len,
		     struct img_err *e)
{
	int r = io_read_file(path, USERS_MAX_BYTES, 0, text, len);

	if (r == -EINVAL)
		return err_set(e, EINVAL, "%s: users file is not a regular "
			       "file", path);
	if (r == -EFBIG)
		return err_set(e, EFBIG, "%s: users file is larger than the "
			       "limit of %u bytes", path, USERS_MAX_BYTES);
	if (r < 0)
		return err_set_errno(e, -r, "%s: cannot read users file",
				     path);
	return 0;
}

static int perr(struct uparse *u, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int perr(struct uparse *u, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(u->e, EINVAL, "%s:%zu:%zu: %s", u->path, m->line + 1,
		       m->column + 1, msg);
}

static int next(struct uparse *u)
{
	if (u->have_ev)
		yaml_event_delete(&u->ev);
	u->have_ev = false;
	if (!yaml_parser_parse(&u->p, &u->ev)) {
		yaml_mark_t m = u->p.problem_mark;
		return perr(u, &m, "%s%s%s", u->p.problem ? u->p.problem :
			    "YAML syntax error", u->p.context ? " " : "",
			    u->p.context ? u->p.context : "");
	}
	u->have_ev = true;
	if (u->ev.type == YAML_ALIAS_EVENT)
		return perr(u, &u->ev.start_mark, "aliases are not supported "
			    "in a users file");
	return 0;
}

static const char *sval(const struct uparse *u)
{
	return (const char *)u->ev.data.scalar.value;
}

static bool is_null_scalar(const struct uparse *u)
{
	const char *v = sval(u);

	return u->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || !strcmp(v, "~") || !strcmp(v, "null"));
}

/* perm: [a, b] -> mask */
static int parse_perm_list(struct uparse *u, const char *key, uint8_t *mask)
{
	int r;

	*mask = 0;
	if (u->ev.type == YAML_SCALAR_EVENT && is_null_scalar(u))
		return 0;
	if (u->ev.type != YAML_SEQUENCE_START_EVENT)
		return perr(u, &u->ev.start_mark, "'%s' must be a list of "
			    "permissions such as [consistent-read, write]",
			    key);
	for (;;) {
		uint8_t bit;

		if ((r = next(u)) < 0)
			return r;
		if (u->ev.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (u->ev.type != YAML_SCALAR_EVENT)
			return perr(u, &u->ev.start_mark, "'%s': expected a "
				    "permission name", key);
		if (perm_parse_qapi(sval(u), &bit) < 0)
			return perr(u, &u->ev.start_mark, "'%s': unknown "
				    "permission '%s' (expected "
				    "consistent-read, write, write-unchanged "
				    "or resize)", key, sval(u));
		*mask |= bit;
	}
}

static const char *const kinds[] = { "vm", "export", "backup", "job",
				     "other" };

enum entry_key { KEY_NAME, KEY_KIND, KEY_IMAGE, KEY_PERM, KEY_SHARED,
		 KEY_QMP, KEY_COUNT };
static const char *const entry_keys[KEY_COUNT] = {
	"name", "kind", "image", "perm", "shared", "qmp",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The key at the current event: one of entry_keys, not seen before in
 * this entry (*seen: a bit per key). */
static int entry_key(struct uparse *u, unsigned *seen, enum entry_key *k)
{
	size_t i;

	if (u->ev.type != YAML_SCALAR_EVENT)
		return perr(u, &u->ev.start_mark, "expected a key "
			    "(name, kind, image, perm, shared, qmp)");
	for (i = 0; i < KEY_COUNT && strcmp(sval(u), entry_keys[i]); i++)
		;
	if (i == KEY_COUNT)
		return perr(u, &u->ev.start_mark, "unknown key '%s' (expected "
			    "name, kind, image, perm, shared, qmp)", sval(u));
	if (*seen & (1u << i))
		return perr(u, &u->ev.start_mark, "duplicate key '%s'",
			    entry_keys[i]);
	*seen |= 1u << i;
	*k = (enum entry_key)i;
	return 0;
}

static int entry_kind(struct uparse *u, struct users_entry *ent)
{
	size_t k;

	for (k = 0; k < ARRAY_LEN(kinds) && strcmp(kinds[k], sval(u)); k++)
		;
	if (k == ARRAY_LEN(kinds))
		return perr(u, &u->ev.start_mark, "unknown kind '%s' (expected "
			    "vm, export, backup, job or other)", sval(u));
	ent->kind = strdup(sval(u));
	return 0;
}

/* image: a file name, resolved against the users file's directory; mk
 * remembers where the scalar sits for the repoint renderer. */
static int entry_image(struct uparse *u, struct users_entry *ent,
		       struct img_mark *mk)
{
	char out[PATH_MAX];
	enum resolve_kind rk;
	struct img_err re = { 0 };

	if (strlen(sval(u)) != u->ev.data.scalar.length)
		return perr(u, &u->ev.start_mark, "'image' contains a NUL "
			    "byte");
	if (resolve_backing(u->path, sval(u), out, sizeof(out), &rk, &re) < 0)
		return perr(u, &u->ev.start_mark, "%s", re.msg);
	if (rk != RESOLVE_FILE)
		return perr(u, &u->ev.start_mark, "image '%s' is a protocol "
			    "name; only files are supported", sval(u));
	ent->image = strdup(sval(u));
	ent->path = strdup(out);
	if (mk) {
		mk->start = u->ev.start_mark.index;
		mk->end = u->ev.end_mark.index;
		mk->plain = u->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	}
	return 0;
}

/* qmp: the QMP monitor socket of the process that runs the image, for
 * a QEMU whose command line names none (-readconfig, a monitor added at
 * run time).  Absolute: it is connected to from wherever imgraph runs.
 * Whether it is a socket is checked on load (users_load), not here: the
 * repoint re-parses the text after a commit, when the process may be
 * gone. */
static int entry_qmp(struct uparse *u, struct users_entry *ent)
{
	const char *v = sval(u);

	if (strlen(v) != u->ev.data.scalar.length)
		return perr(u, &u->ev.start_mark, "'qmp' contains a NUL byte");
	if (v[0] != '/')
		return perr(u, &u->ev.start_mark, "'qmp' must be the absolute "
			    "path of a QMP monitor socket, not '%s'", v);
	if (strlen(v) >= 108)      /* sizeof(sun_path) */
		return perr(u, &u->ev.start_mark, "'qmp': a unix socket path "
			    "has at most 107 bytes");
	ent->qmp = strdup(v);
	ent->qmp_line = (int)u->ev.start_mark.line + 1;
	ent->qmp_col = (int)u->ev.start_mark.column + 1;
	if (!ent->qmp)
		return err_set(u->e, ENOMEM, "%s: out of memory", u->path);
	return 0;
}

/* After the entry's mapping: required keys, then the defaults users.h
 * documents. */
static int entry_finish(struct uparse *u, struct users_entry *ent,
			const yaml_mark_t *at, unsigned seen)
{
	if (!(seen & (1u << KEY_NAME)))
		return perr(u, at, "user entry has no 'name'");
	if (!(seen & (1u << KEY_IMAGE)))
		return perr(u, at, "user '%s' has no 'image'", ent->name);
	if (!ent->kind)
		ent->kind = strdup("other");
	if (!(seen & (1u << KEY_PERM)))
		ent->perm = !strcmp(ent->kind, "vm") ?
			PERM_CONSISTENT_READ | PERM_WRITE :
			PERM_CONSISTENT_READ;
	if (!(seen & (1u << KEY_SHARED)))
		ent->shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
	if (!ent->kind || !ent->name || !ent->image || !ent->path)
		return err_set(u->e, ENOMEM, "%s: out of memory", u->path);
	return 0;
}

/* One value, the current event, of key k. */
static int entry_value(struct uparse *u, enum entry_key k,
		       struct users_entry *ent, struct img_mark *mk)
{
	if (k == KEY_PERM)
		return parse_perm_list(u, entry_keys[k], &ent->perm);
	if (k == KEY_SHARED)
		return parse_perm_list(u, entry_keys[k], &ent->shared);
	if (u->ev.type != YAML_SCALAR_EVENT || !*sval(u))
		return perr(u, &u->ev.start_mark, "'%s' must be a non-empty "
			    "string", entry_keys[k]);
	if (k == KEY_QMP)
		return entry_qmp(u, ent);
	if (k == KEY_KIND)
		return entry_kind(u, ent);
	if (k == KEY_IMAGE)
		return entry_image(u, ent, mk);
	ent->name = strdup(sval(u));
	return 0;
}

static int parse_entry(struct uparse *u, struct users_entry *ent,
		       struct img_mark *mk)
{
	yaml_mark_t at = u->ev.start_mark;
	unsigned seen = 0;
	int r;

	ent->line = (int)at.line + 1;
	ent->col = (int)at.column + 1;
	ent->node = -1;
	for (;;) {
		enum entry_key k = KEY_NAME;

		if ((r = next(u)) < 0)
			return r;
		if (u->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if ((r = entry_key(u, &seen, &k)) < 0 || (r = next(u)) < 0 ||
		    (r = entry_value(u, k, ent, mk)) < 0)
			return r;
	}
	return entry_finish(u, ent, &at, seen);
}

static int parse_users_seq(struct uparse *u)
{
	struct users_file *uf = u->uf;
	int r, cap = 0;

	if (u->ev.type == YAML_SCALAR_EVENT && is_null_scalar(u))
		return 0;
	if (u->ev.type != YAML_SEQUENCE_START_EVENT)
		return perr(u, &u->ev.start_mark, "'users' must be a list");
	for (;;) {
		if ((r = next(u)) < 0)
			return r;
		if (u->ev.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (u->ev.type != YAML_MAPPING_START_EVENT)
			return perr(u, &u->ev.start_mark, "each user must be "
				    "a mapping with name, kind, image, perm, "
				    "shared, qmp");
		if (uf->n == USERS_MAX_ENTRIES)
			return perr(u, &u->ev.start_mark, "more than %d users",
				    USERS_MAX_ENTRIES);
		if (uf->n == cap) {
			int nc = cap ? cap * 2 : 16;
			struct users_entry *nv = realloc(uf->v, sizeof(*nv) *
							 (size_t)nc);
			if (!nv)
				return err_set(u->e, ENOMEM, "out of memory");
			uf->v = nv;
			{
				struct img_mark *nm = realloc(u->marks,
							      sizeof(*nm) *
							      (size_t)nc);
				if (!nm)
					return err_set(u->e, ENOMEM,
						       "out of memory");
				u->marks = nm;
			}
			cap = nc;
		}
		memset(&uf->v[uf->n], 0, sizeof(uf->v[0]));
		memset(&u->marks[uf->n], 0, sizeof(u->marks[0]));
		uf->n++;
		r = parse_entry(u, &uf->v[uf->n - 1], &u->marks[uf->n - 1]);
		if (r < 0)
			return r;
	}
}

static int parse_all(struct uparse *u)
{
	bool seen_users = false;
	int r;

	if ((r = next(u)) < 0)       /* STREAM_START */
		return r;
	if ((r = next(u)) < 0)
		return r;
	if (u->ev.type == YAML_STREAM_END_EVENT)
		return 0;            /* empty file: no users */
	if ((r = next(u)) < 0)       /* after DOCUMENT_START */
		return r;
	if (u->ev.type == YAML_SCALAR_EVENT && is_null_scalar(u))
		return 0;
	if (u->ev.type != YAML_MAPPING_START_EVENT)
		return perr(u, &u->ev.start_mark, "expected a mapping with the "
			    "key 'users'");
	for (;;) {
		if ((r = next(u)) < 0)
			return r;
		if (u->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (u->ev.type != YAML_SCALAR_EVENT ||
		    strcmp(sval(u), "users"))
			return perr(u, &u->ev.start_mark, "unknown top-level "
				    "key (expected 'users')");
		if (seen_users)
			return perr(u, &u->ev.start_mark, "duplicate key "
				    "'users'");
		seen_users = true;
		if ((r = next(u)) < 0)
			return r;
		r = parse_users_seq(u);
		if (r < 0)
			return r;
	}
	if ((r = next(u)) < 0)       /* DOCUMENT_END */
		return r;
	if ((r = next(u)) < 0)
		return r;
	if (u->ev.type != YAML_STREAM_END_EVENT)
		return perr(u, &u->ev.start_mark, "only one YAML document is "
			    "allowed");
	return 0;
}

static int load_text(const char *path, const char *text, size_t len,
		     struct users_file **out, struct img_mark **marks,
		     struct img_err *e)
{
	struct uparse u;
	int r;

	memset(&u, 0, sizeof(u));
	u.path = path;
	u.e = e;
	u.uf = calloc(1, sizeof(*u.uf));
	if (!u.uf || !(u.uf->path = strdup(path))) {
		free(u.uf);
		return err_set(e, ENOMEM, "%s: out of memory", path);
	}
	if (!yaml_parser_initialize(&u.p)) {
		users_free(u.uf);
		return err_set(e, ENOMEM, "%s: out of memory", path);
	}
	yaml_parser_set_input_string(&u.p, (const unsigned char *)text, len);
	/* UTF-8 only, stated rather than detected: detection would skip a
	 * byte-order mark without counting it in the marks' character
	 * indexes (the repoint renderer then edits the wrong bytes), and
	 * would turn UTF-16 input into indexes that are not UTF-8's. */
	yaml_parser_set_encoding(&u.p, YAML_UTF8_ENCODING);
	r = parse_all(&u);
	if (u.have_ev)
		yaml_event_delete(&u.ev);
	yaml_parser_delete(&u.p);
	if (r < 0) {
		users_free(u.uf);
		free(u.marks);
		return r;
	}
	*out = u.uf;
	if (marks)
		*marks = u.marks;
	else
		free(u.marks);
	return 0;
}

/* Every qmp: that exists must be a socket: a regular file there is a
 * typo that would otherwise surface only as "cannot connect" in a plan.
 * A missing one is no error (the process may not run now). */
static int check_qmp_sockets(const struct users_file *uf, struct img_err *e)
{
	for (int i = 0; i < uf->n; i++) {
		const struct users_entry *ent = &uf->v[i];
		struct stat st;

		if (!ent->qmp || stat(ent->qmp, &st) < 0 || S_ISSOCK(st.st_mode))
			continue;
		return err_set(e, EINVAL, "%s:%d:%d: 'qmp' of user '%s': %s "
			       "is not a socket", uf->path, ent->qmp_line,
			       ent->qmp_col, ent->name, ent->qmp);
	}
	return 0;
}

int users_load(const char *path, struct users_file **out, struct img_err *e)
{
	char *text;
	size_t len;
	int r;

	*out = NULL;
	r = read_text(path, &text, &len, e);
	if (r < 0)
		return r;
	r = load_text(path, text, len, out, NULL, e);
	free(text);
	if (r == 0 && (r = check_qmp_sockets(*out, e)) < 0) {
		users_free(*out);
		*out = NULL;
	}
	return r;
}

void users_free(struct users_file *u)
{
	if (!u)
		return;
	for (int i = 0; i < u->n; i++) {
		free(u->v[i].name);
		free(u->v[i].kind);
		free(u->v[i].image);
		free(u->v[i].path);
		free(u->v[i].qmp);
	}
	free(u->v);
	free(u->path);
	free(u);
}

int users_attach(struct graph *g, const struct users_file *uf,
		 struct img_err *e)
{
	struct guser *nu;

	free(g->users_file);
	g->users_file = strdup(uf->path);
	if (!uf->n)
		return 0;
	nu = realloc(g->users, sizeof(*nu) * (size_t)(g->nusers + uf->n));
	if (!nu)
		return err_set(e, ENOMEM, "%s: out of memory", uf->path);
	g->users = nu;
	for (int i = 0; i < uf->n; i++) {
		const struct users_entry *ue = &uf->v[i];
		struct guser *u = &g->users[g->nusers];

		memset(u, 0, sizeof(*u));
		u->kind = PARTY_USER;
		u->name = strdup(ue->name);
		u->user_kind = strdup(ue->kind);
		u->image = strdup(ue->image);
		u->node = ue->node;
		u->perm = ue->perm;
		u->shared = ue->shared;
		u->line = ue->line;
		u->qmp = ue->qmp ? strdup(ue->qmp) : NULL;
		if (!u->name || !u->user_kind || !u->image ||
		    (ue->qmp && !u->qmp)) {
			free(u->name);
			free(u->user_kind);
			free(u->image);
			free(u->qmp);
			return err_set(e, ENOMEM, "%s: out of memory",
				       uf->path);
		}
		g->nusers++;
		if (ue->node >= 0)
			g->nodes[ue->node].flags |= GN_IN_USE;
	}
	return 0;
}

/* Byte offset of character index ci in UTF-8 text. */
static size_t char_to_byte(const char *text, size_t len, size_t ci)
{
	size_t b = 0;

	while (ci && b < len) {
		unsigned char c = (unsigned char)text[b];
		size_t w = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		b += w;
		ci--;
	}
	return b < len ? b : len;
}

static bool plain_safe(const char *s)
{
	if (!*s || strchr("-?:,[]{}#&*!|>'\"%@`~ ", s[0]))
		return false;
	for (const char *p = s; *p; p++)
		if (!(((*p | 32) >= 'a' && (*p | 32) <= 'z') ||
		      (*p >= '0' && *p <= '9') || strchr("/._+-", *p)))
			return false;
	return true;
}

/* The rendered text of a repoint, grown as it is written. */
struct outbuf {
	char *p;
	size_t pos, cap;
};

/* Room for more bytes and the terminating NUL. */
static int out_reserve(struct outbuf *o, size_t more)
{
	char *np;
	size_t nc;

	if (o->pos + more + 1 <= o->cap)
		return 0;
	nc = (o->pos + more + 1) * 2;
	np = realloc(o->p, nc);
	if (!np)
		return -ENOMEM;
	o->p = np;
	o->cap = nc;
	return 0;
}

static int out_append(struct outbuf *o, const char *s, size_t n)
{
	if (out_reserve(o, n) < 0)
		return -ENOMEM;
	memcpy(o->p + o->pos, s, n);
	o->pos += n;
	o->p[o->pos] = '\0';
	return 0;
}

/* Append the YAML form of s (plain when safe and wanted, else
 * double-quoted). */
static int put_scalar(struct outbuf *o, const char *s, bool plain)
{
	/* worst case: every byte a "\xNN" escape, plus the quotes */
	if (out_reserve(o, strlen(s) * 6 + 3) < 0)
		return -ENOMEM;
	if (plain && plain_safe(s)) {
		o->pos += (size_t)sprintf(o->p + o->pos, "%s", s);
		return 0;
	}
	o->p[o->pos++] = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			o->pos += (size_t)sprintf(o->p + o->pos, "\\%c", *c);
		else if (*c < 0x20 || *c == 0x7f)
			o->pos += (size_t)sprintf(o->p + o->pos, "\\x%02x", *c);
		else
			o->p[o->pos++] = (char)*c;
	}
	o->p[o->pos++] = '"';
	o->p[o->pos] = '\0';
	return 0;
}

/* A users file being repointed: its text, what it parsed to, and the new
 * text built so far. */
struct repoint {
	const char *path;
	const char *src;
	size_t slen;
	struct users_file *uf;
	struct img_mark *marks;    /* where each entry's image scalar sits */
	struct outbuf out;
	size_t copied;             /* bytes of src already in out */
};

static bool names_file(const struct users_entry *ent, dev_t dev, ino_t ino)
{
	struct stat st;

	return stat(ent->path, &st) == 0 && st.st_dev == dev &&
	       st.st_ino == ino;
}

/* Copy the text up to entry i's image scalar, then the scalar for
 * new_image_path in place of it. */
static int repoint_entry(struct repoint *rp, int i, const char *new_image_path,
			 struct img_err *e)
{
	const struct users_entry *ent = &rp->uf->v[i];
	char name[PATH_MAX];
	size_t bs, be;
	int r;

	r = resolve_make_name(rp->path, new_image_path, ent->image[0] != '/',
			      name, sizeof(name), e);
	if (r < 0)
		return r;
	bs = char_to_byte(rp->src, rp->slen, rp->marks[i].start);
	be = char_to_byte(rp->src, rp->slen, rp->marks[i].end);
	if (bs < rp->copied || be < bs)
		return err_set(e, EINVAL, "%s:%d: cannot locate the image "
			       "string", rp->path, ent->line);
	if (out_append(&rp->out, rp->src + rp->copied, bs - rp->copied) < 0 ||
	    put_scalar(&rp->out, name, rp->marks[i].plain) < 0)
		return err_set(e, ENOMEM, "out of memory");
	rp->copied = be;
	return 0;
}

/* Never hand back a file that would not load again: the commit writes
 * this text in place of the users file. */
static int repoint_check(const struct repoint *rp, struct img_err *e)
{
	struct users_file *again = NULL;
	int r;

	r = load_text(rp->path, rp->out.p, rp->out.pos, &again, NULL, e);
	if (r == 0 && again->n != rp->uf->n)
		r = err_set(e, EIO, "%s: the rewritten users file has %d "
			    "entries, not %d", rp->path, again->n, rp->uf->n);
	users_free(again);
	if (r < 0)
		err_prefix(e, "cannot repoint the users file (nothing "
			   "written): ");
	return r;
}

int users_repoint_text(const char *users_path, const char *src, size_t slen,
		       dev_t dev, ino_t ino, const char *new_image_path,
		       char **text, size_t *len, int *nchanged,
		       struct img_err *e)
{
	struct repoint rp = { .path = users_path, .src = src, .slen = slen };
	int r;

	*text = NULL;
	*len = 0;
	*nchanged = 0;
	r = load_text(users_path, rp.src, rp.slen, &rp.uf, &rp.marks, e);
	if (r == 0 && out_reserve(&rp.out, rp.slen + 255) < 0)
		r = err_set(e, ENOMEM, "%s: out of memory", users_path);
	for (int i = 0; r == 0 && i < rp.uf->n; i++) {
		if (!names_file(&rp.uf->v[i], dev, ino))
			continue;
		r = repoint_entry(&rp, i, new_image_path, e);
		if (r == 0)
			(*nchanged)++;
	}
	if (r == 0 && out_append(&rp.out, rp.src + rp.copied,
				 rp.slen - rp.copied) < 0)
		r = err_set(e, ENOMEM, "out of memory");
	if (r == 0)
		r = repoint_check(&rp, e);
	if (r == 0) {
		*text = rp.out.p;
		*len = rp.out.pos;
		rp.out.p = NULL;
	}
	free(rp.out.p);
	free(rp.marks);
	users_free(rp.uf);
	return r;
}

int users_repoint(const char *users_path, dev_t dev, ino_t ino,
		  const char *new_image_path, char **text, size_t *len,
		  int *nchanged, struct img_err *e)
{
	char *src;
	size_t slen;
	int r;

	*text = NULL;
	*len = 0;
	*nchanged = 0;
	r = read_text(users_path, &src, &slen, e);
	if (r < 0)
		return r;
	r = users_repoint_text(users_path, src, slen, dev, ino,
			       new_image_path, text, len, nchanged, e);
	free(src);
	return r;
}
