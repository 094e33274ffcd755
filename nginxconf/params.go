package nginxconf

// params are the uwsgi_param directives defined at one level (http, server
// or location), in order. nginx sends every one; like uWSGI, the last
// value of a repeated key wins.
type params []param

type param struct{ key, value string }

// paramsOf collects the uwsgi_param directives of one level.
func paramsOf(body []entry) params {
	var ps params
	for _, e := range body {
		if e.d.GetName() != "uwsgi_param" {
			continue
		}
		v := values(paramStrings(e.d))
		if len(v) < 2 {
			continue
		}
		ps = append(ps, param{v[0], v[1]})
	}
	return ps
}

// or applies nginx's inheritance rule: a level inherits its parent's
// uwsgi_params only if it defines none of its own.
func (ps params) or(parent params) params {
	if len(ps) > 0 {
		return ps
	}
	return parent
}

func (ps params) get(key string) string {
	v := ""
	for _, p := range ps {
		if p.key == key {
			v = p.value
		}
	}
	return v
}

// first returns the value of the first key that is set.
func (ps params) first(keys ...string) string {
	for _, k := range keys {
		if v := ps.get(k); v != "" {
			return v
		}
	}
	return ""
}

// script is the app's entry point: UWSGI_SCRIPT, else UWSGI_MODULE joined to
// UWSGI_CALLABLE by ":" (uWSGI's own precedence).
func (ps params) script() string {
	if s := ps.get("UWSGI_SCRIPT"); s != "" {
		return s
	}
	m := ps.get("UWSGI_MODULE")
	if m == "" {
		return ""
	}
	if c := ps.get("UWSGI_CALLABLE"); c != "" {
		return m + ":" + c
	}
	return m
}
