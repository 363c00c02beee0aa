#!/usr/bin/perl
# A DNS responder for spec/nginx_cosocket_spec.lua.  nginx's `resolver` asks a DNS
# server and never reads /etc/hosts, and the simulator's certificate names only
# "localhost": this answers A queries for "localhost" with 127.0.0.1 and every other
# name with NXDOMAIN, so the TLS specs need no DNS server of the machine.
#
#   perl spec/nginx/dns.pl PORTFILE [IDLE_SECONDS]
#
# Binds a free UDP port on 127.0.0.1, writes it to PORTFILE, answers until killed
# or until no query came for IDLE_SECONDS (default 120), so a spec run that dies
# before its teardown leaves nothing behind for long.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;

my ($portfile, $idle) = @ARGV;
die "usage: dns.pl PORTFILE [IDLE_SECONDS]\n" unless defined $portfile;
$idle = 120 unless defined $idle;

my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'udp')
  or die "dns.pl: cannot bind: $!\n";
open(my $fh, '>', "$portfile.tmp") or die "dns.pl: $portfile.tmp: $!\n";
print $fh $sock->sockport, "\n";
close $fh;
rename("$portfile.tmp", $portfile) or die "dns.pl: rename: $!\n";

my $select = IO::Select->new($sock);
while ($select->can_read($idle)) {
  my $query = '';
  my $peer = $sock->recv($query, 512);
  next unless defined $peer && length($query) >= 12;
  my ($id, $flags, $qdcount) = unpack('n n n', $query);
  next if ($flags & 0x8000) || $qdcount != 1;    # a reply, or not one question
  my ($pos, @labels) = (12);
  while ($pos < length $query) {
    my $len = ord substr($query, $pos++, 1);
    last if $len == 0;
    push @labels, substr($query, $pos, $len);
    $pos += $len;
  }
  next if $pos + 4 > length $query;
  my ($qtype, $qclass) = unpack('n n', substr($query, $pos, 4));
  my $question = substr($query, 12, $pos + 4 - 12);
  my $known = lc(join('.', @labels)) eq 'localhost';
  my $answer = '';
  if ($known && $qtype == 1 && $qclass == 1) {
    # the question's name (a pointer to offset 12), A, IN, TTL 60, 4 bytes
    $answer = pack('n n n N n C4', 0xC00C, 1, 1, 60, 4, 127, 0, 0, 1);
  }
  my $reply_flags = 0x8000 | ($flags & 0x7900) | 0x0080 | ($known ? 0 : 3);
  my $reply = pack('n n n n n n', $id, $reply_flags, 1, $answer eq '' ? 0 : 1, 0, 0)
    . $question . $answer;
  $sock->send($reply, 0, $peer);
}
