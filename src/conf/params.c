/*
 * params.c - every configuration parameter, its default and its type.
 *
 * Names, defaults and units are Postfix's (postconf(5)) except where the
 * man page postern.conf(5) says otherwise: smtp_tls_security_level is
 * "verify" here (Postfix: empty, i.e. none), because credentials must not
 * travel in clear text by default.
 *
 * Keep the table sorted by name: lookups are a binary search.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/params.h"
#include "lib/version.h"

#define DAY	86400LL
#define STR(n, d)		{ n, d, PT_STR, 0, 0, 0, 0 }
#define STRF(n, d, f)		{ n, d, PT_STR, 0, 0, 0, f }
#define BOOL(n, d)		{ n, d, PT_BOOL, 0, 0, 1, 0 }
#define INT(n, d, lo, hi)	{ n, d, PT_INT, 0, lo, hi, 0 }
#define TIME(n, d, u, lo, hi)	{ n, d, PT_TIME, u, lo, hi, 0 }
#define IGN(n, d)		{ n, d, PT_STR, 0, 0, 0, PF_IGNORED }

static const struct param_def table[] = {
	STR("alias_database", "hash:/etc/aliases"),
	STR("alias_maps", "hash:/etc/aliases"),
	BOOL("append_at_myorigin", "yes"),
	BOOL("append_dot_mydomain", "no"),
	STR("authorized_flush_users", "static:anyone"),
	STR("authorized_mailq_users", "static:anyone"),
	TIME("bounce_queue_lifetime", "5d", 'd', 0, 100 * DAY),
	INT("bounce_size_limit", "50000", 1, 2000000000),
	IGN("compatibility_level", "3.6"),
	STR("config_directory", POSTERN_SYSCONFDIR),
	INT("default_destination_concurrency_limit", "20", 1, 1000),
	INT("default_destination_recipient_limit", "50", 1, 100000),
	INT("default_process_limit", "100", 1, 1000),
	TIME("delay_warning_time", "0h", 'h', 0, 100 * DAY),
	IGN("inet_interfaces", "loopback-only"),
	IGN("inet_protocols", "all"),
	STR("mail_owner", "postern"),
	STR("mail_version", POSTERN_VERSION),
	STR("maillog_file", ""),
	TIME("maximal_backoff_time", "4000s", 's', 1, 100 * DAY),
	TIME("maximal_queue_lifetime", "5d", 'd', 0, 100 * DAY),
	INT("message_size_limit", "10240000", 0, 2000000000),
	TIME("minimal_backoff_time", "300s", 's', 1, 100 * DAY),
	STR("mydestination", ""),
	STRF("mydomain", NULL, PF_COMPUTED),
	STRF("myhostname", NULL, PF_COMPUTED),
	IGN("mynetworks", "127.0.0.0/8 [::1]/128"),
	IGN("mynetworks_style", "host"),
	STR("myorigin", "$myhostname"),
	STR("propagate_unmatched_extensions", "canonical, virtual"),
	IGN("proxy_interfaces", ""),
	STR("queue_directory", POSTERN_SPOOLDIR),
	INT("queue_minfree", "0", 0, 1LL << 50),
	TIME("queue_run_delay", "300s", 's', 1, 100 * DAY),
	STR("recipient_delimiter", ""),
	IGN("relay_domains", ""),
	STR("relayhost", ""),
	STR("sender_dependent_relayhost_maps", ""),
	STR("setgid_group", "postern"),
	TIME("smtp_connect_timeout", "30s", 's', 1, 3600),
	TIME("smtp_data_done_timeout", "600s", 's', 1, 3600),
	TIME("smtp_data_init_timeout", "120s", 's', 1, 3600),
	TIME("smtp_data_xfer_timeout", "180s", 's', 1, 3600),
	INT("smtp_destination_concurrency_limit", "$default_destination_concurrency_limit", 1, 1000),
	INT("smtp_destination_recipient_limit", "$default_destination_recipient_limit", 1, 100000),
	IGN("smtp_enforce_tls", "no"),
	STR("smtp_fallback_relay", ""),
	STR("smtp_generic_maps", ""),
	STR("smtp_header_checks", ""),
	STR("smtp_helo_name", "$myhostname"),
	TIME("smtp_helo_timeout", "300s", 's', 1, 3600),
	INT("smtp_line_length_limit", "998", 40, 998),
	TIME("smtp_mail_timeout", "300s", 's', 1, 3600),
	INT("smtp_min_data_rate", "500", 1, 1000000000),
	BOOL("smtp_per_request_deadline", "yes"),
	TIME("smtp_quit_timeout", "300s", 's', 1, 3600),
	TIME("smtp_rcpt_timeout", "300s", 's', 1, 3600),
	BOOL("smtp_sasl_allow_unencrypted", "no"),
	BOOL("smtp_sasl_allow_unverified_tls", "no"),
	BOOL("smtp_sasl_auth_enable", "no"),
	BOOL("smtp_sasl_auth_soft_bounce", "yes"),
	STR("smtp_sasl_mechanism_filter", ""),
	TIME("smtp_sasl_password_cache_time", "300s", 's', 0, 86400),
	STR("smtp_sasl_password_maps", ""),
	STR("smtp_sasl_security_options", "noplaintext, noanonymous"),
	STR("smtp_sasl_tls_security_options", "$smtp_sasl_security_options"),
	BOOL("smtp_sender_dependent_authentication", "no"),
	TIME("smtp_starttls_timeout", "300s", 's', 1, 3600),
	STR("smtp_tls_CAfile", ""),
	STR("smtp_tls_CApath", ""),
	STR("smtp_tls_cert_file", ""),
	STR("smtp_tls_ciphers", "medium"),
	STR("smtp_tls_exclude_ciphers", ""),
	STR("smtp_tls_fingerprint_cert_match", ""),
	STR("smtp_tls_fingerprint_digest", "sha256"),
	STR("smtp_tls_key_file", "$smtp_tls_cert_file"),
	INT("smtp_tls_loglevel", "1", 0, 4),
	STR("smtp_tls_mandatory_ciphers", "medium"),
	STR("smtp_tls_mandatory_exclude_ciphers", ""),
	STR("smtp_tls_mandatory_protocols", ">=TLSv1.2"),
	IGN("smtp_tls_note_starttls_offer", "no"),
	STR("smtp_tls_policy_maps", ""),
	STR("smtp_tls_protocols", ">=TLSv1.2"),
	STR("smtp_tls_secure_cert_match", "nexthop, dot-nexthop"),
	STR("smtp_tls_security_level", "verify"),
	STR("smtp_tls_servername", "hostname"),
	IGN("smtp_tls_session_cache_database", ""),
	TIME("smtp_tls_session_cache_timeout", "3600s", 's', 0, 8640000),
	STR("smtp_tls_verify_cert_match", "hostname"),
	BOOL("smtp_tls_wrappermode", "no"),
	IGN("smtp_use_tls", "no"),
	BOOL("soft_bounce", "no"),
	STR("syslog_facility", "mail"),
	STR("syslog_name", "postern"),
	STR("transport_maps", ""),
};

/* Sorted-table comparison for bsearch. */
static int
param_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct param_def *)elem)->name);
}

/* Find a parameter by name. */
const struct param_def *
param_find(const char *name)
{
	return bsearch(name, table, sizeof(table) / sizeof(table[0]),
	    sizeof(table[0]), param_cmp);
}

/* The whole table. */
const struct param_def *
param_table(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}
