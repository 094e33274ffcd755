package main

import (
	"testing"

	"github.com/pyvhost/pyvhost/uwsgictl/daemontest"
)

func TestMain(m *testing.M) { daemontest.Main(m) }
