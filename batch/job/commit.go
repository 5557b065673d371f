package job

// The committer makes finished parts durable off the writer's path. A
// commit is several fsyncs (the part, its dead letters, the directory,
// the manifest, the directory again), 10-30 ms on a cloud disk: done by
// the writer, it stalled reading and scoring for as long, about what
// scoring a whole default part costs on a fast model. The writer hands a
// part over once its files are written and flushed and goes on with the
// next; the committer fsyncs and renames each part's files and then
// saves the manifest once for all the parts that were waiting (a group
// commit), so a slow disk costs fewer manifest rewrites, not a slower
// job. The order of durability is the same as before: a part's files
// are renamed (and the directory synced) before the manifest names it.

// maxQueuedParts bounds the finished parts waiting for the committer:
// each holds two open files and no rows.
const maxQueuedParts = 16

// commitLoop commits the parts the writer sends until it closes the
// channel; parts handed over before a failure elsewhere are still
// committed, as the writer itself did before. After a failure of its own
// it aborts the rest.
func (j *run) commitLoop(parts <-chan *partState, fail func(error)) {
	var err error
	for st := range parts {
		if err != nil {
			st.abort()
			continue
		}
		group := []*partState{st}
		for more := true; more; {
			select {
			case st, ok := <-parts:
				if !ok {
					more = false
					break
				}
				group = append(group, st)
			default:
				more = false
			}
		}
		if err = j.commitGroup(group); err != nil {
			fail(err)
		}
	}
}

// commitGroup renames the parts' files into place, then names them all
// in the manifest with one save.
func (j *run) commitGroup(group []*partState) error {
	for i, st := range group {
		p, err := st.commit(j)
		if err != nil {
			for _, rest := range group[i:] {
				rest.abort()
			}
			return err
		}
		j.man.add(p)
	}
	if err := j.man.save(j.dir); err != nil {
		return err
	}
	j.tr.parts.Add(int64(len(group)))
	return nil
}
