/* The drb_err type: setting, prefixing and naming error codes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <drbook/error.h>

int drb_err_set(drb_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	err->cause = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int drb_err_prefix(drb_err *err, const char *fmt, ...)
{
	char prefix[256], old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return DRB_ERR;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s%s", prefix, old);
	return err->code;
}

void drb_err_clear(drb_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->cause = 0;
	err->msg[0] = '\0';
}

const char *drb_code_name(int code)
{
	switch (code) {
	case DRB_OK:
		return "ok";
	case DRB_ENOMEM:
		return "nomem";
	case DRB_EINVAL:
		return "invalid";
	case DRB_ENOTFOUND:
		return "not_found";
	case DRB_ETIMEOUT:
		return "timeout";
	case DRB_ETRANSIENT:
		return "transient";
	case DRB_EDENIED:
		return "denied";
	case DRB_ELIMIT:
		return "limit";
	case DRB_ESCRIPT:
		return "script";
	case DRB_EINTEGRITY:
		return "integrity";
	case DRB_EIO:
		return "io";
	case DRB_EINTERRUPTED:
		return "interrupted";
	case DRB_ESHADOW:
		return "shadow_violation";
	default:
		return "error";
	}
}

int drb_code_retryable(int code)
{
	return code == DRB_ETRANSIENT || code == DRB_ETIMEOUT;
}
