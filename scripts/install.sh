#!/bin/sh
# install.sh - called by `make install`: the programs, the mailq and
# newaliases names, the man pages and an example main.cf that never
# replaces an existing one.
#
# usage: install.sh DESTDIR SBINDIR BINDIR MANDIR SYSCONFDIR SPOOLDIR
set -eu

destdir=$1 sbindir=$2 bindir=$3 mandir=$4 sysconfdir=$5 spooldir=$6
top=$(cd "$(dirname "$0")/.." && pwd)

install -d "$destdir$sbindir" "$destdir$bindir" "$destdir$sysconfdir" \
	"$destdir$mandir/man1" "$destdir$mandir/man5" "$destdir$mandir/man8"
for p in sendmail posternd postern; do
	install -m 0755 "$top/build/$p" "$destdir$sbindir/$p"
done
# mailq is sendmail under another name, as everywhere; newaliases is
# postern's (sendmail -bi runs postern newaliases too).
ln -sf "$sbindir/sendmail" "$destdir$bindir/mailq"
ln -sf "$sbindir/postern" "$destdir$bindir/newaliases"
install -m 0644 "$top/src/cmd/postern.1" "$destdir$mandir/man1/postern.1"
install -m 0644 "$top/src/conf/postern.conf.5" "$destdir$mandir/man5/postern.conf.5"
install -m 0644 "$top/src/spool/postern-spool.5" "$destdir$mandir/man5/postern-spool.5"
install -m 0644 "$top/src/cmd/sendmail.8" "$destdir$mandir/man8/sendmail.8"
install -m 0644 "$top/src/cmd/posternd.8" "$destdir$mandir/man8/posternd.8"
if [ -e "$destdir$sysconfdir/main.cf" ]; then
	echo "install.sh: keeping the existing $sysconfdir/main.cf"
else
	install -m 0644 "$top/etc/main.cf" "$destdir$sysconfdir/main.cf"
fi
echo "install.sh: installed into ${destdir:-/}; posternd creates $spooldir at its first start"
