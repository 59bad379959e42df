/* Lua source text without a Lua state: the tokenizer (Lua 5.4's llex.c rules for where
 * strings, long strings and comments begin and end) and the one ${ } template scanner. The
 * loader's checks and the sandbox's interpolation both split templates here, so validate and
 * run cannot disagree on where an expression ends. */
#include <string.h>

#include <drbook/luatext.h>

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

void drb_lex_init(drb_lex *lx, const char *s, size_t len)
{
	lx->s = s;
	lx->len = len;
	lx->i = 0;
	lx->line = 1;
}

static char at(const drb_lex *lx, size_t i)
{
	return i < lx->len ? lx->s[i] : '\0';
}

/* At s[i] == '[': the level of a long bracket "[==[" (number of '='), or -1 when it is not
 * one ("[", "[=" alone). */
static long long_level(const drb_lex *lx, size_t i)
{
	size_t j = i + 1;

	while (at(lx, j) == '=')
		j++;
	return j < lx->len && lx->s[j] == '[' ? (long)(j - i - 1) : -1;
}

/* Skips a long bracket of the given level opening at lx->i; 0, or -1 when it never closes. */
static int skip_long(drb_lex *lx, long level)
{
	size_t i = lx->i + (size_t)level + 2;

	for (; i < lx->len; i++) {
		if (lx->s[i] == '\n') {
			lx->line++;
		} else if (lx->s[i] == ']') {
			size_t j = i + 1;

			while (at(lx, j) == '=')
				j++;
			if ((long)(j - i - 1) == level && at(lx, j) == ']') {
				lx->i = j + 1;
				return 0;
			}
		}
	}
	lx->i = lx->len;
	return -1;
}

/* Skips a '...' or "..." string at lx->i; 0, or -1 when unfinished (end of text or a line
 * break that is not escaped, as in Lua). */
static int skip_short(drb_lex *lx)
{
	char q = lx->s[lx->i];
	size_t i = lx->i + 1;

	while (i < lx->len) {
		char c = lx->s[i];

		if (c == q) {
			lx->i = i + 1;
			return 0;
		}
		if (c == '\n' || c == '\r')
			break;
		if (c != '\\') {
			i++;
			continue;
		}
		c = at(lx, i + 1);
		if (c == '\n' || c == '\r') { /* an escaped line break: "\r\n" counts as one */
			char d = at(lx, i + 2);

			lx->line++;
			i += (d == '\n' || d == '\r') && d != c ? 3 : 2;
		} else if (c == 'z') { /* \z skips the white space that follows, line breaks too */
			i += 2;
			while (i < lx->len && is_space(lx->s[i]))
				lx->line += lx->s[i++] == '\n';
		} else {
			i += 2;
		}
	}
	lx->i = i < lx->len ? i : lx->len;
	return -1;
}

static const char *const OPS3[] = {"...", NULL};
static const char *const OPS2[] = {"..", "==", "~=", "<=", ">=", "<<", ">>", "//", "::", NULL};

static size_t op_len(const drb_lex *lx)
{
	size_t rest = lx->len - lx->i;

	for (size_t k = 0; OPS3[k]; k++)
		if (rest >= 3 && !memcmp(lx->s + lx->i, OPS3[k], 3))
			return 3;
	for (size_t k = 0; OPS2[k]; k++)
		if (rest >= 2 && !memcmp(lx->s + lx->i, OPS2[k], 2))
			return 2;
	return 1;
}

drb_tok_kind drb_lex_next(drb_lex *lx, drb_tok *t)
{
	size_t start;
	long level;
	char c;

	for (;;) {
		while (lx->i < lx->len && is_space(lx->s[lx->i]))
			lx->line += lx->s[lx->i++] == '\n';
		if (!(at(lx, lx->i) == '-' && at(lx, lx->i + 1) == '-'))
			break;
		/* a comment: long when "--" is followed by a long bracket, else to the line end */
		lx->i += 2;
		if (at(lx, lx->i) == '[' && (level = long_level(lx, lx->i)) >= 0) {
			start = lx->i;
			if (skip_long(lx, level)) {
				t->kind = DRB_TOK_ERROR;
				goto span;
			}
			continue;
		}
		while (lx->i < lx->len && lx->s[lx->i] != '\n')
			lx->i++;
	}
	start = lx->i;
	t->line = lx->line;
	if (lx->i >= lx->len) {
		t->kind = DRB_TOK_EOF;
		goto span;
	}
	c = lx->s[lx->i];
	if (is_alpha(c)) {
		while (lx->i < lx->len && (is_alpha(lx->s[lx->i]) || is_digit(lx->s[lx->i])))
			lx->i++;
		t->kind = DRB_TOK_NAME;
	} else if (is_digit(c) || (c == '.' && is_digit(at(lx, lx->i + 1)))) {
		/* llex.c's read_numeral: alphanumerics and dots, a sign only after an exponent */
		int hex = c == '0' && (at(lx, lx->i + 1) == 'x' || at(lx, lx->i + 1) == 'X');
		char e1 = hex ? 'p' : 'e', e2 = hex ? 'P' : 'E';

		lx->i++;
		while (lx->i < lx->len) {
			char d = lx->s[lx->i];

			if ((d == e1 || d == e2) &&
			    (at(lx, lx->i + 1) == '+' || at(lx, lx->i + 1) == '-'))
				lx->i += 2;
			else if (is_alpha(d) || is_digit(d) || d == '.')
				lx->i++;
			else
				break;
		}
		t->kind = DRB_TOK_NUMBER;
	} else if (c == '"' || c == '\'') {
		t->kind = skip_short(lx) ? DRB_TOK_ERROR : DRB_TOK_STRING;
	} else if (c == '[' && (level = long_level(lx, lx->i)) >= 0) {
		t->kind = skip_long(lx, level) ? DRB_TOK_ERROR : DRB_TOK_STRING;
	} else {
		lx->i += op_len(lx);
		t->kind = DRB_TOK_OP;
	}
span:
	t->p = lx->s + start;
	t->n = lx->i - start;
	t->off = start;
	if (t->kind == DRB_TOK_ERROR || t->kind == DRB_TOK_EOF) {
		t->line = lx->line;
		lx->i = lx->len; /* an error ends the text */
	}
	return t->kind;
}

int drb_tok_is(const drb_tok *t, drb_tok_kind k, const char *s)
{
	size_t n = strlen(s);

	return t->kind == k && t->n == n && !memcmp(t->p, s, n);
}

int drb_tok_is_keyword(const drb_tok *t)
{
	static const char *const kw[] = {"and",	  "break", "do",       "else",	"elseif", "end",
					 "false", "for",   "function", "goto",	"if",	  "in",
					 "local", "nil",   "not",      "or",	"repeat", "return",
					 "then",  "true",  "until",    "while", NULL};

	if (t->kind != DRB_TOK_NAME)
		return 0;
	for (size_t k = 0; kw[k]; k++)
		if (drb_tok_is(t, DRB_TOK_NAME, kw[k]))
			return 1;
	return 0;
}

/* ---- templates ---- */

void drb_tmpl_init(drb_tmpl *t, const char *s, size_t len)
{
	t->s = s;
	t->len = len;
	t->i = 0;
}

/* The expression opening with "${" at t->s[at]: tokens until the '}' that matches. */
static int tmpl_expr(drb_tmpl *t, size_t at, drb_tmpl_part *out)
{
	drb_lex lx;
	drb_tok tok;
	size_t depth = 0, ntok = 0;

	drb_lex_init(&lx, t->s + at + 2, t->len - at - 2);
	for (;;) {
		drb_tok_kind k = drb_lex_next(&lx, &tok);

		if (k == DRB_TOK_EOF || k == DRB_TOK_ERROR) {
			out->error = DRB_TMPL_UNTERMINATED;
			return DRB_EINVAL;
		}
		if (k == DRB_TOK_OP && tok.n == 1 && tok.p[0] == '{') {
			depth++;
		} else if (k == DRB_TOK_OP && tok.n == 1 && tok.p[0] == '}') {
			if (depth == 0)
				break;
			depth--;
		}
		ntok++;
	}
	if (!ntok) {
		out->error = DRB_TMPL_EMPTY;
		return DRB_EINVAL;
	}
	out->expr = 1;
	out->p = t->s + at + 2;
	out->n = tok.off;
	out->end = at + 2 + tok.off + 1;
	t->i = out->end;
	return 1;
}

int drb_tmpl_next(drb_tmpl *t, drb_tmpl_part *out)
{
	size_t i = t->i, lit = t->i;

	memset(out, 0, sizeof(*out));
	out->off = t->i;
	if (t->i >= t->len)
		return 0;
	while (i < t->len) {
		if (t->s[i] != '$') {
			i++;
			continue;
		}
		if (i + 2 < t->len && t->s[i + 1] == '$' && t->s[i + 2] == '{') {
			/* "$${": the text before it is one part, "${" starts the next */
			if (i > lit)
				break;
			lit = i + 1;
			i += 3;
			continue;
		}
		if (i + 1 < t->len && t->s[i + 1] == '{') {
			if (i > lit)
				break; /* the literal text before it first */
			out->off = i;
			return tmpl_expr(t, i, out);
		}
		i++;
	}
	out->expr = 0;
	out->p = t->s + lit;
	out->n = i - lit;
	out->off = lit;
	out->end = i;
	t->i = i;
	return 1;
}

int drb_tmpl_whole(const char *s, size_t len, const char **expr, size_t *n)
{
	drb_tmpl t;
	drb_tmpl_part p;

	drb_tmpl_init(&t, s, len);
	if (drb_tmpl_next(&t, &p) != 1 || !p.expr || p.off != 0 || p.end != len)
		return 0;
	*expr = p.p;
	*n = p.n;
	return 1;
}

int drb_expr_wrap(drb_buf *b, const char *expr, size_t n)
{
	int rc = drb_buf_puts(b, "return (");

	if (rc == 0)
		rc = drb_buf_append(b, expr, n);
	if (rc == 0)
		rc = drb_buf_puts(b, "\n)");
	return rc;
}
