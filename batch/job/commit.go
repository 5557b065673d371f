package job

import (
	"errors"
	"sync/atomic"

	"github.com/servekit/servekit/internal/atomicfile"
)

// The committer makes finished parts durable off the writer's path. A
// commit is several fsyncs (the part, its dead letters, the directory,
// the manifest, the directory again), 10-30 ms on a cloud disk: done by
// the writer, it stalled reading and scoring for as long, about what
// scoring a whole default part costs on a fast model. The writer hands a
// part over once its files are written and flushed and goes on with the
// next; the committer fsyncs and renames each part's files and then
// saves the manifest once for all the parts that were waiting (a group
// commit), so a slow disk costs fewer manifest rewrites, not a slower
// job. The group's files are synced together and renamed with one sync
// of the directory (atomicfile.CommitAll), so a group costs about four disk
// round trips however many parts it holds. The order of durability is
// the same as before: a part's files are renamed (and the directory
// synced) before the manifest names it. The manifest is first written
// with the first group: before any part is committed there is nothing a
// rerun could lose or double.

// maxQueuedParts bounds the finished parts waiting for the committer:
// each holds two open files and no rows.
const maxQueuedParts = 16

// commitLoop commits the parts the writer sends until it closes the
// channel, in groups: the parts waiting when one is taken. Parts handed
// over before a failure elsewhere are still committed, as the writer
// itself did before; after a failure of its own it aborts the rest. When
// the writer has finished the input (succeeded, set before the channel
// closes) the last save also marks the manifest complete, and
// commitLoop says so: two fsyncs fewer at the end of every job.
func (j *run) commitLoop(parts <-chan *partState, succeeded *atomic.Bool, fail func(error)) (complete bool) {
	var pending []*partState
	open := true
	take := func(wait bool) { // moves the parts handed over into pending
		for open {
			if wait && len(pending) == 0 {
				st, ok := <-parts
				if open = ok; ok {
					pending = append(pending, st)
				}
				continue
			}
			select {
			case st, ok := <-parts:
				if open = ok; ok {
					pending = append(pending, st)
				}
			default:
				return
			}
		}
	}
	var err error
	for take(true); len(pending) > 0; take(true) {
		group := pending
		pending = nil
		if err != nil {
			for _, st := range group {
				st.abort()
			}
			continue
		}
		if err = j.commitFiles(group); err != nil {
			fail(err)
			continue
		}
		take(false) // parts that came while the files synced go in the next group
		final := !open && len(pending) == 0 && succeeded.Load()
		if err = j.saveManifest(group, final); err != nil {
			fail(err)
			continue
		}
		complete = final
	}
	return complete
}

// commitFiles moves the group's files into place together (atomicfile.CommitAll:
// the syncs at once, one directory sync).
func (j *run) commitFiles(group []*partState) error {
	var files []*atomicfile.File
	var err error
	for _, st := range group {
		err = errors.Join(err, st.clean(j))
		files = append(files, st.files()...)
	}
	if err == nil {
		err = atomicfile.CommitAll(files...)
	}
	if err != nil {
		for _, st := range group {
			st.abort()
		}
	}
	return err
}

// saveManifest names the group's parts in the manifest (and marks it
// complete when final) with one atomic save.
func (j *run) saveManifest(group []*partState, final bool) error {
	for _, st := range group {
		j.man.add(st.record(j))
	}
	j.man.Complete = final
	if err := j.man.save(j.dir); err != nil {
		return err
	}
	j.tr.parts.Add(int64(len(group)))
	return nil
}
