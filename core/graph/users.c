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

static int parse_entry(struct uparse *u, struct users_entry *ent,
		       struct img_mark *mk)
{
	yaml_mark_t at = u->ev.start_mark;
	bool have_perm = false, have_shared = false;
	int r;

	ent->line = (int)at.line + 1;
	ent->col = (int)at.column + 1;
	ent->node = -1;
	for (;;) {
		char key[16];

		if ((r = next(u)) < 0)
			return r;
		if (u->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (u->ev.type != YAML_SCALAR_EVENT)
			return perr(u, &u->ev.start_mark, "expected a key "
				    "(name, kind, image, perm, shared)");
		snprintf(key, sizeof(key), "%s", sval(u));
		if (strlen(sval(u)) >= sizeof(key) ||
		    (strcmp(key, "name") && strcmp(key, "kind") &&
		     strcmp(key, "image") && strcmp(key, "perm") &&
		     strcmp(key, "shared")))
			return perr(u, &u->ev.start_mark, "unknown key '%s' "
				    "(expected name, kind, image, perm, "
				    "shared)", sval(u));
		{
			yaml_mark_t km = u->ev.start_mark;
			if ((!strcmp(key, "name") && ent->name) ||
			    (!strcmp(key, "kind") && ent->kind) ||
			    (!strcmp(key, "image") && ent->image) ||
			    (!strcmp(key, "perm") && have_perm) ||
			    (!strcmp(key, "shared") && have_shared))
				return perr(u, &km, "duplicate key '%s'", key);
		}
		if ((r = next(u)) < 0)
			return r;
		if (!strcmp(key, "perm")) {
			have_perm = true;
			r = parse_perm_list(u, key, &ent->perm);
			if (r < 0)
				return r;
			continue;
		}
		if (!strcmp(key, "shared")) {
			have_shared = true;
			r = parse_perm_list(u, key, &ent->shared);
			if (r < 0)
				return r;
			continue;
		}
		if (u->ev.type != YAML_SCALAR_EVENT || !*sval(u))
			return perr(u, &u->ev.start_mark, "'%s' must be a "
				    "non-empty string", key);
		if (!strcmp(key, "kind")) {
			size_t k;
			for (k = 0; k < 5 && strcmp(kinds[k], sval(u)); k++)
				;
			if (k == 5)
				return perr(u, &u->ev.start_mark, "unknown kind "
					    "'%s' (expected vm, export, backup, "
					    "job or other)", sval(u));
			ent->kind = strdup(sval(u));
		} else if (!strcmp(key, "name")) {
			ent->name = strdup(sval(u));
		} else {
			char out[PATH_MAX];
			enum resolve_kind rk;
			struct img_err re = { 0 };

			if (strlen(sval(u)) != u->ev.data.scalar.length)
				return perr(u, &u->ev.start_mark, "'image' "
					    "contains a NUL byte");
			if (resolve_backing(u->path, sval(u), out, sizeof(out),
					    &rk, &re) < 0)
				return perr(u, &u->ev.start_mark, "%s", re.msg);
			if (rk != RESOLVE_FILE)
				return perr(u, &u->ev.start_mark, "image '%s' "
					    "is a protocol name; only files are "
					    "supported", sval(u));
			ent->image = strdup(sval(u));
			ent->path = strdup(out);
			if (mk) {
				mk->start = u->ev.start_mark.index;
				mk->end = u->ev.end_mark.index;
				mk->plain = u->ev.data.scalar.style ==
					    YAML_PLAIN_SCALAR_STYLE;
			}
		}
	}
	if (!ent->name)
		return perr(u, &at, "user entry has no 'name'");
	if (!ent->image)
		return perr(u, &at, "user '%s' has no 'image'", ent->name);
	if (!ent->kind)
		ent->kind = strdup("other");
	if (!have_perm)
		ent->perm = !strcmp(ent->kind, "vm") ?
			PERM_CONSISTENT_READ | PERM_WRITE :
			PERM_CONSISTENT_READ;
	if (!have_shared)
		ent->shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
	if (!ent->kind || !ent->name || !ent->image || !ent->path)
		return err_set(u->e, ENOMEM, "%s: out of memory", u->path);
	return 0;
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
				    "shared");
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
		if (!u->name || !u->user_kind || !u->image) {
			free(u->name);
			free(u->user_kind);
			free(u->image);
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

/* Append the YAML form of s (plain when safe and wanted, else
 * double-quoted) to buf at *pos. */
static int put_scalar(char **buf, size_t *pos, size_t *cap, const char *s,
		      bool plain)
{
	size_t need = strlen(s) * 6 + 3;

	if (*pos + need + 1 > *cap) {
		size_t nc = (*pos + need + 1) * 2;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = nc;
	}
	if (plain && plain_safe(s)) {
		*pos += (size_t)sprintf(*buf + *pos, "%s", s);
		return 0;
	}
	(*buf)[(*pos)++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			*pos += (size_t)sprintf(*buf + *pos, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			*pos += (size_t)sprintf(*buf + *pos, "\\x%02x", *p);
		else
			(*buf)[(*pos)++] = (char)*p;
	}
	(*buf)[(*pos)++] = '"';
	(*buf)[*pos] = '\0';
	return 0;
}

int users_repoint(const char *users_path, dev_t dev, ino_t ino,
		  const char *new_image_path, char **text, size_t *len,
		  int *nchanged, struct img_err *e)
{
	struct users_file *uf = NULL;
	struct img_mark *marks = NULL;
	char *src, *out = NULL;
	size_t slen, pos = 0, cap, copied = 0;
	int r;

	*text = NULL;
	*len = 0;
	*nchanged = 0;
	r = read_text(users_path, &src, &slen, e);
	if (r < 0)
		return r;
	r = load_text(users_path, src, slen, &uf, &marks, e);
	if (r < 0) {
		free(src);
		return r;
	}
	cap = slen + 256;
	out = malloc(cap);
	if (!out) {
		r = err_set(e, ENOMEM, "%s: out of memory", users_path);
		goto done;
	}
	for (int i = 0; i < uf->n; i++) {
		struct stat st;
		char name[PATH_MAX];
		size_t bs, be;

		if (stat(uf->v[i].path, &st) < 0 || st.st_dev != dev ||
		    st.st_ino != ino)
			continue;
		r = resolve_make_name(users_path, new_image_path,
				      uf->v[i].image[0] != '/', name,
				      sizeof(name), e);
		if (r < 0)
			goto done;
		bs = char_to_byte(src, slen, marks[i].start);
		be = char_to_byte(src, slen, marks[i].end);
		if (bs < copied || be < bs) {
			r = err_set(e, EINVAL, "%s:%d: cannot locate the image "
				    "string", users_path, uf->v[i].line);
			goto done;
		}
		if (pos + (bs - copied) + 1 > cap) {
			size_t nc = (pos + (bs - copied) + 1) * 2;
			char *nb = realloc(out, nc);
			if (!nb) {
				r = err_set(e, ENOMEM, "out of memory");
				goto done;
			}
			out = nb;
			cap = nc;
		}
		memcpy(out + pos, src + copied, bs - copied);
		pos += bs - copied;
		if (put_scalar(&out, &pos, &cap, name, marks[i].plain) < 0) {
			r = err_set(e, ENOMEM, "out of memory");
			goto done;
		}
		copied = be;
		(*nchanged)++;
	}
	if (pos + (slen - copied) + 1 > cap) {
		char *nb = realloc(out, pos + (slen - copied) + 1);
		if (!nb) {
			r = err_set(e, ENOMEM, "out of memory");
			goto done;
		}
		out = nb;
	}
	memcpy(out + pos, src + copied, slen - copied);
	pos += slen - copied;
	out[pos] = '\0';
	/* Never hand back a file that would not load again: the commit
	 * writes this text in place of the users file. */
	{
		struct users_file *again = NULL;

		r = load_text(users_path, out, pos, &again, NULL, e);
		if (r == 0 && again->n != uf->n)
			r = err_set(e, EIO, "%s: the rewritten users file has "
				    "%d entries, not %d", users_path,
				    again->n, uf->n);
		users_free(again);
		if (r < 0) {
			err_prefix(e, "cannot repoint the users file "
				   "(nothing written): ");
			goto done;
		}
	}
	*text = out;
	*len = pos;
	out = NULL;
	r = 0;
done:
	free(out);
	free(marks);
	users_free(uf);
	free(src);
	return r;
}
