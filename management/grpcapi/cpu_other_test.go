//go:build !unix

package grpcapi

import "time"

func processCPU() time.Duration { return 0 }
