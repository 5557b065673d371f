// Package doccheck makes the Go a reader sees in servekit's documents
// compile, so that a doc that drifts from the API fails make test. Its
// test, TestDocs, reads every Markdown file of the repository (the
// README, bench/README.md, the nested modules' READMEs) and every doc
// comment go doc shows (package docs, exported declarations), in all the
// modules, and type-checks each Go snippet against the packages the
// module really has.
//
// What counts as Go: a fence labelled go; an unlabelled block (every
// code block of a doc comment is one) that looks like Go, because it
// holds := or a qualified call or starts a line with a Go keyword, and is
// not a command line. Tables, routes, diagrams, benchmark output and
// shell are left alone without a marker. A Markdown fence that must stay
// unchecked (an API of a release not yet merged) takes an HTML comment on
// the line before it, which does not render:
//
//	<!-- doccheck: skip REASON -->
//
// How a snippet is checked depends on what it is:
//
//   - a whole file (it starts with its package clause) compiles as it is,
//     unused variables included;
//   - declarations go into a file; statements, perhaps after import
//     lines, into a function body; one expression the text shows as a
//     value (rollout.GuardFunc(func...)) is assigned to _. Those fragments
//     may declare a variable they do not use: they show a step and stop.
//
// A fragment may use packages without importing them and the free names
// of a fixed table (ctx, model, c: a *cache.Cache, ...; TestDocs lists
// them with their types): the checker type-checks, adds an import for
// each undefined name the import table knows and a variable for each the
// name table knows, and checks again, as goimports would. A name in
// neither is an error, so the table, not the checker, decides what a
// snippet may leave to the prose. Two elisions a reader understands are
// allowed: a line holding only "...", and a block "{ ... }"; "..." in an
// argument list is not Go and fails.
//
// Packages are type-checked with go/types against the compiler's export
// data, found by one go list -export per module: exactly what go build
// would compile the snippet against. The build cache holds it after go
// vet, which make test runs first, so the check costs seconds: 2 s alone,
// 10 s in make test's -race run on the shared 2-core machine at load 17
// (go/types itself runs instrumented). A cold cache pays for the
// module's build once. Errors are reported at the
// document's file and line (the wrapper carries //line directives).
package doccheck
