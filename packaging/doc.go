// Package packaging defines Petrel's two Debian packages, petrel (the
// agent) and petrel-server (the control plane), and writes them with the
// nfpm library. `make package` (scripts/package.sh) builds the binaries and
// runs cmd/mkdeb, which calls Build for each definition.
//
// The directory holds what goes into the packages besides the binaries:
// systemd/ (the units; petrel.service is client/service's rendering of the
// default agent unit), debian/NAME/ (maintainer scripts) and
// petrel-server.yaml (the server's conffile, /etc/petrel/server.yaml).
//
// Only cmd/mkdeb and the tests import this package: nfpm must stay out of
// the product binaries. The lab-tier test (install_lab_test.go) installs
// both packages with dpkg into a throwaway root and checks the result.
package packaging
