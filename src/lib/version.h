/*
 * version.h - postern's version, defined here once: --version of every
 * program and the mail_version parameter (`postern conf mail_version`,
 * as Postfix's postconf prints its own) read it.
 */
#ifndef POSTERN_VERSION_H
#define POSTERN_VERSION_H

#define POSTERN_VERSION	"0.9.0"

#endif
