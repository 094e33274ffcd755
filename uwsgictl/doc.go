// Package uwsgictl holds everything on the uwsgi side of pyvhost: the wire
// codec (wire), the per-app Python worker pools (pool), the vhost daemon
// that owns the sockets and routes requests (daemon), and the control API.
package uwsgictl
