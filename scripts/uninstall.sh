#!/bin/sh
# uninstall.sh - called by `make uninstall`: removes what install.sh put
# in place, except the configuration (SYSCONFDIR), the spool (SPOOLDIR,
# which may still hold mail) and the postern user and group.
#
# usage: uninstall.sh DESTDIR SBINDIR BINDIR MANDIR UNITDIR
set -eu

destdir=$1 sbindir=$2 bindir=$3 mandir=$4 unitdir=$5

rm -f "$destdir$sbindir/sendmail" "$destdir$sbindir/posternd" \
	"$destdir$sbindir/postern" \
	"$destdir$mandir/man1/postern.1" \
	"$destdir$mandir/man5/postern.conf.5" \
	"$destdir$mandir/man5/postern-spool.5" \
	"$destdir$mandir/man8/sendmail.8" \
	"$destdir$mandir/man8/posternd.8" \
	"$destdir$unitdir/postern.service"
# The links only when they are ours.
for l in mailq newaliases; do
	if [ -L "$destdir$bindir/$l" ]; then
		case $(readlink "$destdir$bindir/$l") in
		"$sbindir/sendmail" | "$sbindir/postern") rm -f "$destdir$bindir/$l" ;;
		esac
	fi
done
# An init script only when it is postern's.
if [ -f "$destdir/etc/init.d/postern" ] &&
	grep -q "posternd" "$destdir/etc/init.d/postern"; then
	rm -f "$destdir/etc/init.d/postern"
fi
echo "uninstall.sh: removed postern from ${destdir:-/}; kept the configuration, the spool and the postern user"
