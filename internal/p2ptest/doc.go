// Package p2ptest gives tests real seedfleet libp2p hosts on loopback, built
// by p2p.NewHost exactly as seeds and devices build theirs (nothing dials
// out unless a test connects it), and one rule for the network tests that
// need what a machine may lack (root, network namespaces, iptables): they
// skip on a developer's machine and fail under CI, where a skip would hide
// that they never ran.
package p2ptest
