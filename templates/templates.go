// Package templates embeds the assets pyvhost writes or runs: the nginx site
// template today; the Python worker, status page and systemd unit as the
// daemon grows.
package templates

import _ "embed"

// SiteConf is the text/template for one site's nginx server block.
//
//go:embed site.conf.tmpl
var SiteConf string

// UwsgiParams is the list of uwsgi_param lines Debian's /etc/nginx/uwsgi_params
// holds; it is inlined when no uwsgi_params file exists beside nginx.conf.
//
//go:embed uwsgi_params
var UwsgiParams string

// WorkerPy is the Python program that runs one app's zygote and workers
// for the daemon.
//
//go:embed worker.py
var WorkerPy string

// SpeedupsC is the optional C accelerator for the worker's hot loop; the
// daemon compiles it when it can (see uwsgictl/daemon/speedups.go).
//
//go:embed csrc/speedups.c
var SpeedupsC string

// StatusHTML is the daemon's status page; it polls /status.json.
//
//go:embed status.html
var StatusHTML string
