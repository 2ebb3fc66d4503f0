package ipmi

// The per-session records of a node (logins under way, established
// sessions, handshakes, replay windows) live in maps that are empty
// whenever the node has no session. A Go map keeps its storage after its
// last entry is deleted, so across ten thousand nodes that have each seen
// one session the empty maps would hold megabytes; put makes a map on its
// first entry and del drops it with its last.

// put stores v under k in *m, making the map first when there is none.
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V, 1)
	}
	(*m)[k] = v
}

// del deletes k from *m and drops the map once it is empty.
func del[K comparable, V any](m *map[K]V, k K) {
	delete(*m, k)
	if len(*m) == 0 {
		*m = nil
	}
}
