package rollout

// RouteKey is the routing decision Predict makes for a request with key and
// no version, without calling the version: the canary tests ask it for
// hundreds of thousands of keys, which through Predict under -race would
// take minutes. TestRouteKeyMatchesPredict checks that both agree.
func (r *Router) RouteKey(key string) (string, error) {
	e, s, err := r.route("", key)
	if err != nil {
		return "", err
	}
	s.release(r, false)
	return e.name, nil
}

// Idle reports whether the Shadow's dispatcher is asleep with its ticker
// stopped.
func (s *Shadow) Idle() bool { return s.idle.Load() }
