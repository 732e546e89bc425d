#!/bin/sh
# postern-user.sh - create the postern system group and user when they are
# missing; `make install` runs it. Safe to run any number of times: it
# only ever adds what is not there, and changes nothing that is.
#
# usage: postern-user.sh [USER [GROUP [HOME]]]
#   defaults: postern postern /var/spool/postern
#
# The user owns the spool and runs posternd after start-up; the group is
# the one sendmail is set-group-ID to, so that any local user can drop
# mail into incoming/ without being able to read anyone else's.
set -eu

user=${1:-postern}
group=${2:-$user}
home=${3:-/var/spool/postern}

if [ "$(id -u)" -ne 0 ]; then
	echo "postern-user.sh: run as root to create user $user and group $group" >&2
	exit 77
fi

if getent group "$group" >/dev/null; then
	:
elif command -v groupadd >/dev/null 2>&1; then
	groupadd --system "$group"
	echo "postern-user.sh: created group $group"
elif command -v addgroup >/dev/null 2>&1; then
	addgroup -S "$group"	# BusyBox (routers, Alpine)
	echo "postern-user.sh: created group $group"
else
	echo "postern-user.sh: no groupadd or addgroup; create group $group by hand" >&2
	exit 69
fi

if getent passwd "$user" >/dev/null; then
	:
elif command -v useradd >/dev/null 2>&1; then
	nologin=/usr/sbin/nologin
	[ -x "$nologin" ] || nologin=/sbin/nologin
	[ -x "$nologin" ] || nologin=/bin/false
	useradd --system --gid "$group" --home-dir "$home" --no-create-home \
		--shell "$nologin" --comment "postern mail relay" "$user"
	echo "postern-user.sh: created user $user"
elif command -v adduser >/dev/null 2>&1; then
	adduser -S -D -H -h "$home" -s /sbin/nologin -G "$group" \
		-g "postern mail relay" "$user"	# BusyBox
	echo "postern-user.sh: created user $user"
else
	echo "postern-user.sh: no useradd or adduser; create user $user by hand" >&2
	exit 69
fi
