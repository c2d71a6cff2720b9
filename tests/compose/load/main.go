// Command load loads compose files the way `docker compose config` does (compose-go:
// schema validation, YAML merge, interpolation, override merging, consistency checks such
// as depends_on targets) and prints the resulting project as JSON, for tests without Docker.
//
//	go run . ../../../docker-compose.yml [more files...]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: load COMPOSE_FILE [COMPOSE_FILE...]")
		os.Exit(2)
	}
	files := os.Args[1:]
	options, err := cli.NewProjectOptions(
		files,
		cli.WithName("moisson"),
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithoutEnvironmentResolution, // the host's env must not leak into the check
		cli.WithConsistency(true),
		cli.WithNormalization(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
