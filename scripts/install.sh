#!/bin/sh
# install.sh - called by `make install`: the programs, the mailq and
# newaliases names, the man pages, the systemd unit, an example main.cf
# that never replaces an existing one, and (as root) the postern user and
# group and the spool tree with its owners and modes.
#
# usage: install.sh DESTDIR SBINDIR BINDIR MANDIR SYSCONFDIR SPOOLDIR UNITDIR
#
# Environment: POSTERN_BUILD is the directory of the built programs
# (default: build/ of this tree). POSTERN_USER (default postern) names
# the user and group.
# CREATE_USER=no skips creating them; CREATE_USER=yes creates them even
# when DESTDIR is set (by default a staged install into DESTDIR, as for a
# package, leaves the system's users alone: the package's postinst runs
# scripts/postern-user.sh). A DESTDIR install gives files to the user
# (set-group-ID sendmail, the spool tree) only with CREATE_USER=yes, so
# that what it builds does not depend on the users of the build host.
#
# /etc/aliases (under DESTDIR), when it exists, is compiled for postern
# (postern map -a hash:/etc/aliases) unless its .db is newer than it or
# is not postern's: a Berkeley DB file that Postfix may still use is left
# alone (posternd reads /etc/aliases as text meanwhile; newaliases
# compiles it).
set -eu

destdir=$1 sbindir=$2 bindir=$3 mandir=$4 sysconfdir=$5 spooldir=$6 unitdir=$7
top=$(cd "$(dirname "$0")/.." && pwd)
build=${POSTERN_BUILD:-$top/build}
user=${POSTERN_USER:-postern}
create_user=${CREATE_USER:-}
if [ -z "$create_user" ]; then
	if [ -z "$destdir" ]; then create_user=yes; else create_user=no; fi
fi
root=no
[ "$(id -u)" -eq 0 ] && root=yes

install -d "$destdir$sbindir" "$destdir$bindir" "$destdir$sysconfdir" \
	"$destdir$mandir/man1" "$destdir$mandir/man5" "$destdir$mandir/man8" \
	"$destdir$unitdir"

if [ "$root" = yes ] && [ "$create_user" = yes ]; then
	"$top/scripts/postern-user.sh" "$user" "$user" "$spooldir"
fi
have_group=no
if [ "$root" = yes ] && { [ -z "$destdir" ] || [ "$create_user" = yes ]; } &&
	getent group "$user" >/dev/null && getent passwd "$user" >/dev/null; then
	have_group=yes
fi

install -m 0755 "$build/posternd" "$destdir$sbindir/posternd"
install -m 0755 "$build/postern" "$destdir$sbindir/postern"
# sendmail is set-group-ID postern: the group lets any user drop mail
# into incoming/ and nothing more (see sendmail(8), SECURITY).
if [ "$have_group" = yes ]; then
	install -m 2755 -o root -g "$user" "$build/sendmail" \
		"$destdir$sbindir/sendmail"
else
	install -m 0755 "$build/sendmail" "$destdir$sbindir/sendmail"
	echo "install.sh: sendmail installed without set-group-ID $user" \
		"(not root, or no $user user and group); only root can queue mail" \
		"until you run, as root: scripts/postern-user.sh &&" \
		"chgrp $user $destdir$sbindir/sendmail && chmod 2755 $destdir$sbindir/sendmail"
fi
# mailq is sendmail under another name, as everywhere; newaliases is
# postern's (sendmail -bi runs postern newaliases too).
ln -sf "$sbindir/sendmail" "$destdir$bindir/mailq"
ln -sf "$sbindir/postern" "$destdir$bindir/newaliases"

install -m 0644 "$top/src/cmd/postern.1" "$destdir$mandir/man1/postern.1"
install -m 0644 "$top/src/conf/postern.conf.5" "$destdir$mandir/man5/postern.conf.5"
install -m 0644 "$top/src/spool/postern-spool.5" "$destdir$mandir/man5/postern-spool.5"
install -m 0644 "$top/src/cmd/sendmail.8" "$destdir$mandir/man8/sendmail.8"
install -m 0644 "$top/src/cmd/posternd.8" "$destdir$mandir/man8/posternd.8"

# The service file, with the paths of this installation.
sed -e "s|@SBINDIR@|$sbindir|g" -e "s|@SPOOLDIR@|$spooldir|g" \
	"$top/etc/postern.service.in" >"$destdir$unitdir/postern.service.tmp"
chmod 0644 "$destdir$unitdir/postern.service.tmp"
mv -f "$destdir$unitdir/postern.service.tmp" "$destdir$unitdir/postern.service"

if [ -e "$destdir$sysconfdir/main.cf" ]; then
	echo "install.sh: keeping the existing $sysconfdir/main.cf"
else
	install -m 0644 "$top/etc/main.cf" "$destdir$sysconfdir/main.cf"
	# Another user than the default: the daemon runs as it, and the
	# set-group-ID sendmail trusts it with -C.
	if [ "$user" != postern ]; then
		printf '\n# Set by make install (POSTERN_USER).\nmail_owner = %s\nsetgid_group = %s\n' \
			"$user" "$user" >>"$destdir$sysconfdir/main.cf"
	fi
fi

# The spool tree (postern-spool(5)). Existing directories get their
# owners and modes put right; their contents are never touched.
if [ "$have_group" = yes ]; then
	spool=$destdir$spooldir
	install -d -m 0755 -o root -g root "$spool" "$spool/incoming"
	install -d -m 1730 -o "$user" -g "$user" "$spool/incoming/tmp"
	install -d -m 1770 -o "$user" -g "$user" "$spool/incoming/new"
	for d in active deferred hold corrupt state pid; do
		install -d -m 0700 -o "$user" -g "$user" "$spool/$d"
	done
	install -d -m 0755 -o "$user" -g "$user" "$spool/public"
	echo "install.sh: spool $spooldir ready (owner $user)"
else
	echo "install.sh: the spool $spooldir is made by posternd at its first start"
fi

# The aliases that alias_maps names by default (see the top).
aliases=$destdir/etc/aliases
if [ -f "$aliases" ]; then
	if [ -e "$aliases.db" ] &&
		[ -z "$(find "$aliases" -newer "$aliases.db")" ]; then
		echo "install.sh: /etc/aliases.db is up to date"
	elif [ -e "$aliases.db" ] && ! "$build/postern" -C "$destdir$sysconfdir" \
		map -s "hash:$aliases" >/dev/null 2>&1; then
		echo "install.sh: leaving /etc/aliases.db alone (not made by" \
			"postern: Postfix's?); posternd reads /etc/aliases as text" \
			"until you run newaliases"
	elif "$build/postern" -C "$destdir$sysconfdir" map -a "hash:$aliases"; then
		echo "install.sh: compiled /etc/aliases into /etc/aliases.db"
	else
		echo "install.sh: /etc/aliases could not be compiled (see above);" \
			"posternd reads it as text until it can: fix it, then run newaliases"
	fi
fi
echo "install.sh: installed into ${destdir:-/}"
