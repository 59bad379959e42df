/* Lua source text without Lua: a tokenizer that follows Lua 5.4's lexical rules (strings with
 * escapes, long strings, comments, long comments) and the one ${ } template scanner built on
 * it. Part of the core module, so that the runbook loader (validate) and the Lua sandbox (run)
 * split templates exactly alike. Pure functions over borrowed text; nothing is allocated. */
#ifndef DRBOOK_LUATEXT_H
#define DRBOOK_LUATEXT_H

#include <stddef.h>

#include <drbook/util.h>

typedef enum drb_tok_kind {
	DRB_TOK_EOF,
	DRB_TOK_NAME,	/* a name or a keyword (drb_tok_is_keyword tells them apart) */
	DRB_TOK_STRING, /* '...', "..." or a long string [[...]], quotes included */
	DRB_TOK_NUMBER,
	DRB_TOK_OP,   /* an operator or punctuation: "..", "==", "{", ... */
	DRB_TOK_ERROR /* an unfinished string, long string or long comment */
} drb_tok_kind;

typedef struct drb_tok {
	drb_tok_kind kind;
	const char *p; /* borrowed from the lexer's text */
	size_t n;
	size_t off; /* offset of p in the text */
	int line;   /* 1-based line of the token's start */
} drb_tok;

typedef struct drb_lex {
	const char *s;
	size_t len, i;
	int line;
} drb_lex;

/* s (len bytes, borrowed, need not be NUL-terminated) is tokenized from its start. */
void drb_lex_init(drb_lex *lx, const char *s, size_t len);
/* The next token, skipping white space and comments; DRB_TOK_EOF at the end, and
 * DRB_TOK_ERROR (then EOF) for text Lua's lexer would refuse as unfinished. */
drb_tok_kind drb_lex_next(drb_lex *lx, drb_tok *t);
/* 1 when t is a token of kind k spelt exactly s. */
int drb_tok_is(const drb_tok *t, drb_tok_kind k, const char *s);
/* 1 when t is one of Lua's reserved words (and, end, nil, ...). */
int drb_tok_is_keyword(const drb_tok *t);

/* ${ } templates. "${expr}" holds a Lua expression that ends at the '}' matching its '{',
 * found by the tokenizer above, so braces inside strings and comments do not count; "$${" is a
 * literal "${". */
typedef enum drb_tmpl_error {
	DRB_TMPL_OK,
	DRB_TMPL_UNTERMINATED, /* no closing '}' (or an unfinished string inside) */
	DRB_TMPL_EMPTY	       /* "${}" with only white space or comments inside */
} drb_tmpl_error;

typedef struct drb_tmpl_part {
	int expr;      /* 1: p/n is an expression's text (between "${" and "}"); 0: literal text */
	const char *p; /* borrowed from the template */
	size_t n;
	size_t off, end;      /* the part spans [off, end) of the template, "${" and "}" included */
	drb_tmpl_error error; /* why drb_tmpl_next failed; off is then the "${" */
} drb_tmpl_part;

typedef struct drb_tmpl {
	const char *s;
	size_t len, i;
} drb_tmpl;

void drb_tmpl_init(drb_tmpl *t, const char *s, size_t len);
/* The next part: returns 1 with *out, 0 at the end, or DRB_EINVAL with out->error and
 * out->off set. Literal text may come in several parts, concatenated as they are: "a $${b}"
 * gives "a " and "${b}". */
int drb_tmpl_next(drb_tmpl *t, drb_tmpl_part *out);
/* 1 when the whole template is exactly one "${expr}" (which keeps its type when evaluated),
 * with *expr and *n its text; 0 otherwise (also for a malformed template). */
int drb_tmpl_whole(const char *s, size_t len, const char **expr, size_t *n);

/* The Lua chunk an expression is compiled and evaluated as, by validate and by run alike:
 * "return (" expr "\n)" (the newline keeps a trailing "-- comment" from eating the
 * parenthesis; the parentheses keep "1) x = (2" from sneaking in a statement). Appends to b;
 * DRB_ELIMIT or DRB_ENOMEM from the buffer. */
int drb_expr_wrap(drb_buf *b, const char *expr, size_t n);

#endif
