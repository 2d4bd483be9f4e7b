// Package sbom produces the software bill of materials that fsbuild attaches
// to each image it pushes.
//
// The bill of materials is an SPDX 2.3 JSON document derived only from the Go
// build information embedded in the binaries fsbuild compiled
// (runtime/debug.BuildInfo, as read by debug/buildinfo.ReadFile): one package
// per binary, one per Go standard library version and one per dependency
// module. Everything that decides what goes into such a document and how it
// is encoded belongs here; reading files out of an image, computing their
// digests and attaching the document to a manifest belong to the caller.
//
// Output is byte-for-byte deterministic for the same Options: no wall clock,
// no map iteration order and no random identifiers are involved.
package sbom

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MediaType is the media type of the documents returned by SPDX.
const MediaType = "application/spdx+json"

// Binary is one Go program inside the image.
type Binary struct {
	Path   string           // absolute path inside the image, e.g. /usr/local/bin/executor
	Info   *debug.BuildInfo // from debug/buildinfo.ReadFile on the compiled file
	SHA256 string           // hex sha256 of the file's bytes
}

// Options describes the document to produce.
type Options struct {
	Name      string    // document name, e.g. "fedscale-exec linux/amd64"
	Namespace string    // unique URI for the document, e.g. https://github.com/fedscale/fedscale-go/spdx/fedscale-exec/sha256:abcd
	Created   time.Time // creation time (the build's SOURCE_DATE_EPOCH), written UTC RFC3339 with seconds ("2006-01-02T15:04:05Z")
	Creator   string    // tool, e.g. "fsbuild-v1.2.3", written as "Tool: fsbuild-v1.2.3"
	Binaries  []Binary
}

const (
	spdxVersion  = "SPDX-2.3"
	dataLicense  = "CC0-1.0"
	documentID   = "SPDXRef-DOCUMENT"
	noAssertion  = "NOASSERTION"
	createdFmt   = "2006-01-02T15:04:05Z"
	develVersion = "(devel)"
)

// SPDX returns the SPDX 2.3 JSON document (indented with two spaces, trailing newline).
//
// Packages are ordered binaries first (in the given order), then one Go
// standard library package per distinct Go version, then dependency modules
// sorted by path and version. A dependency module used by several binaries
// appears once. The document DESCRIBES every binary; every binary DEPENDS_ON
// its standard library and on each of its own dependency modules.
func SPDX(opts Options) ([]byte, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	b := &docBuilder{
		ids:    map[string]bool{documentID: true},
		stdlib: map[string]*stdlibPkg{},
		mods:   map[modKey]*modPkg{},
	}
	for i := range opts.Binaries {
		if err := b.addBinary(&opts.Binaries[i]); err != nil {
			return nil, err
		}
	}
	doc := b.document(opts)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("sbom: encoding SPDX document: %w", err)
	}
	return buf.Bytes(), nil
}

func validate(opts Options) error {
	var errs []error
	if strings.TrimSpace(opts.Name) == "" {
		errs = append(errs, errors.New("sbom: document name is empty"))
	}
	if opts.Namespace == "" {
		errs = append(errs, errors.New("sbom: document namespace is empty"))
	} else if u, err := url.Parse(opts.Namespace); err != nil {
		errs = append(errs, fmt.Errorf("sbom: document namespace %q is not a URI: %v", opts.Namespace, err))
	} else if u.Scheme == "" || strings.Contains(opts.Namespace, "#") {
		errs = append(errs, fmt.Errorf("sbom: document namespace %q must be an absolute URI without a '#' part", opts.Namespace))
	}
	if opts.Created.IsZero() {
		errs = append(errs, errors.New("sbom: creation time is zero"))
	}
	if strings.TrimSpace(opts.Creator) == "" {
		errs = append(errs, errors.New("sbom: creator is empty"))
	}
	if len(opts.Binaries) == 0 {
		errs = append(errs, errors.New("sbom: no binaries"))
	}
	seen := map[string]int{}
	for i, bin := range opts.Binaries {
		name := fmt.Sprintf("binary %d", i)
		if bin.Path != "" {
			name = fmt.Sprintf("binary %d (%s)", i, bin.Path)
		}
		switch {
		case bin.Path == "":
			errs = append(errs, fmt.Errorf("sbom: %s: path is empty", name))
		case !strings.HasPrefix(bin.Path, "/"):
			errs = append(errs, fmt.Errorf("sbom: %s: path is not absolute", name))
		default:
			if j, dup := seen[bin.Path]; dup {
				errs = append(errs, fmt.Errorf("sbom: %s: same path as binary %d", name, j))
			} else {
				seen[bin.Path] = i
			}
		}
		if !isSHA256Hex(bin.SHA256) {
			errs = append(errs, fmt.Errorf("sbom: %s: SHA256 %q is not 64 hex characters", name, bin.SHA256))
		}
		if bin.Info == nil {
			errs = append(errs, fmt.Errorf("sbom: %s: build info is nil", name))
			continue
		}
		if bin.Info.GoVersion == "" {
			errs = append(errs, fmt.Errorf("sbom: %s: build info has no Go version", name))
		}
		if bin.Info.Path == "" && bin.Info.Main.Path == "" {
			errs = append(errs, fmt.Errorf("sbom: %s: build info has neither a main package nor a main module path", name))
		}
		for j, dep := range bin.Info.Deps {
			switch {
			case dep == nil:
				errs = append(errs, fmt.Errorf("sbom: %s: dependency %d is nil", name, j))
			case dep.Path == "":
				errs = append(errs, fmt.Errorf("sbom: %s: dependency %d has an empty module path", name, j))
			case dep.Replace != nil && dep.Replace.Path == "":
				errs = append(errs, fmt.Errorf("sbom: %s: dependency %s has a replacement with an empty path", name, dep.Path))
			}
		}
	}
	return errors.Join(errs...)
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// JSON shape of the parts of SPDX 2.3 that are emitted. Field order is the
// order of the specification's examples.

type document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Packages          []pkg          `json:"packages"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type pkg struct {
	SPDXID                string        `json:"SPDXID"`
	Name                  string        `json:"name"`
	VersionInfo           string        `json:"versionInfo,omitempty"`
	PackageFileName       string        `json:"packageFileName,omitempty"`
	DownloadLocation      string        `json:"downloadLocation"`
	FilesAnalyzed         bool          `json:"filesAnalyzed"`
	Checksums             []checksum    `json:"checksums,omitempty"`
	LicenseConcluded      string        `json:"licenseConcluded"`
	LicenseDeclared       string        `json:"licenseDeclared"`
	CopyrightText         string        `json:"copyrightText"`
	Comment               string        `json:"comment,omitempty"`
	ExternalRefs          []externalRef `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string        `json:"primaryPackagePurpose"`
}

type checksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type externalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type relationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// modKey identifies one dependency module package after replacements are
// applied: path and version of the code actually compiled in, and for a
// replacement by a local directory, that directory.
type modKey struct {
	path, version, dir string
}

func (k modKey) less(o modKey) bool {
	if k.path != o.path {
		return k.path < o.path
	}
	if k.version != o.version {
		return k.version < o.version
	}
	return k.dir < o.dir
}

type modPkg struct {
	key      modKey
	sum      string
	replaces map[string]bool // original "path@version" of replaced requirements
	id       string
}

type stdlibPkg struct {
	version string
	id      string
}

type binPkg struct {
	bin    *Binary
	id     string
	stdlib *stdlibPkg
	deps   []*modPkg
}

type docBuilder struct {
	ids    map[string]bool
	bins   []*binPkg
	stdlib map[string]*stdlibPkg
	mods   map[modKey]*modPkg
}

func (b *docBuilder) addBinary(bin *Binary) error {
	info := bin.Info
	bp := &binPkg{bin: bin}
	sl := b.stdlib[info.GoVersion]
	if sl == nil {
		sl = &stdlibPkg{version: info.GoVersion}
		b.stdlib[info.GoVersion] = sl
	}
	bp.stdlib = sl
	own := map[*modPkg]bool{}
	for _, dep := range info.Deps {
		key := modKey{path: dep.Path, version: dep.Version}
		original := ""
		if r := dep.Replace; r != nil {
			original = modString(dep.Path, dep.Version)
			if r.Version == "" {
				// Replaced by a local directory: the code is the
				// original module's, at no published version.
				key = modKey{path: dep.Path, version: develVersion, dir: r.Path}
			} else {
				key = modKey{path: r.Path, version: r.Version}
			}
		}
		sum := dep.Sum
		if dep.Replace != nil {
			sum = dep.Replace.Sum
		}
		m := b.mods[key]
		if m == nil {
			m = &modPkg{key: key, replaces: map[string]bool{}}
			b.mods[key] = m
		}
		switch {
		case m.sum == "":
			m.sum = sum
		case sum != "" && sum != m.sum:
			return fmt.Errorf("sbom: binary %s: module %s has go.sum hash %s, but another binary has %s",
				bin.Path, modString(key.path, key.version), sum, m.sum)
		}
		if original != "" {
			m.replaces[original] = true
		}
		if !own[m] {
			own[m] = true
			bp.deps = append(bp.deps, m)
		}
	}
	sort.Slice(bp.deps, func(i, j int) bool { return bp.deps[i].key.less(bp.deps[j].key) })
	b.bins = append(b.bins, bp)
	return nil
}

func (b *docBuilder) document(opts Options) *document {
	doc := &document{
		SPDXVersion:       spdxVersion,
		DataLicense:       dataLicense,
		SPDXID:            documentID,
		Name:              opts.Name,
		DocumentNamespace: opts.Namespace,
		CreationInfo: creationInfo{
			Created:  opts.Created.UTC().Format(createdFmt),
			Creators: []string{"Tool: " + opts.Creator},
		},
		Packages:      []pkg{},
		Relationships: []relationship{},
	}

	// Identifiers are assigned in output order so that any collision
	// suffixes are deterministic too.
	for _, bp := range b.bins {
		bp.id = b.newID("Binary", strings.TrimLeft(bp.bin.Path, "/"))
		doc.Packages = append(doc.Packages, binaryPackage(bp))
	}

	versions := make([]string, 0, len(b.stdlib))
	for v := range b.stdlib {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		sl := b.stdlib[v]
		sl.id = b.newID("GoStdlib", v)
		doc.Packages = append(doc.Packages, pkg{
			SPDXID:                sl.id,
			Name:                  "stdlib",
			VersionInfo:           v,
			DownloadLocation:      noAssertion,
			LicenseConcluded:      noAssertion,
			LicenseDeclared:       noAssertion,
			CopyrightText:         noAssertion,
			ExternalRefs:          purlRef(purl("stdlib", v)),
			PrimaryPackagePurpose: "LIBRARY",
		})
	}

	mods := make([]*modPkg, 0, len(b.mods))
	for _, m := range b.mods {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].key.less(mods[j].key) })
	for _, m := range mods {
		idSrc := modString(m.key.path, m.key.version)
		if m.key.dir != "" {
			idSrc = m.key.path + "-local-" + m.key.dir
		}
		m.id = b.newID("GoModule", idSrc)
		doc.Packages = append(doc.Packages, modulePackage(m))
	}

	for _, bp := range b.bins {
		doc.Relationships = append(doc.Relationships, relationship{documentID, "DESCRIBES", bp.id})
	}
	for _, bp := range b.bins {
		doc.Relationships = append(doc.Relationships, relationship{bp.id, "DEPENDS_ON", bp.stdlib.id})
		for _, m := range bp.deps {
			doc.Relationships = append(doc.Relationships, relationship{bp.id, "DEPENDS_ON", m.id})
		}
	}
	return doc
}

func binaryPackage(bp *binPkg) pkg {
	info := bp.bin.Info
	name := info.Path
	if name == "" {
		name = info.Main.Path
	}
	p := pkg{
		SPDXID:           bp.id,
		Name:             name,
		VersionInfo:      info.Main.Version,
		PackageFileName:  bp.bin.Path,
		DownloadLocation: noAssertion,
		Checksums: []checksum{{
			Algorithm:     "SHA256",
			ChecksumValue: strings.ToLower(bp.bin.SHA256),
		}},
		LicenseConcluded:      noAssertion,
		LicenseDeclared:       noAssertion,
		CopyrightText:         noAssertion,
		Comment:               settingsComment(info.Settings),
		PrimaryPackagePurpose: "APPLICATION",
	}
	if info.Main.Path != "" {
		p.ExternalRefs = purlRef(purl(info.Main.Path, info.Main.Version))
	}
	return p
}

// settingsComment lists the build settings as "key=value" lines sorted by
// key (then value), after a "Go build settings:" header line.
func settingsComment(settings []debug.BuildSetting) string {
	if len(settings) == 0 {
		return ""
	}
	var sb strings.Builder
	s := make([]debug.BuildSetting, len(settings))
	copy(s, settings)
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Key != s[j].Key {
			return s[i].Key < s[j].Key
		}
		return s[i].Value < s[j].Value
	})
	sb.WriteString("Go build settings:")
	for _, kv := range s {
		sb.WriteString("\n")
		sb.WriteString(kv.Key)
		sb.WriteString("=")
		sb.WriteString(kv.Value)
	}
	return sb.String()
}

func modulePackage(m *modPkg) pkg {
	var notes []string
	if m.key.dir != "" {
		notes = append(notes, "replaced by local directory "+m.key.dir)
	}
	if len(m.replaces) > 0 {
		orig := make([]string, 0, len(m.replaces))
		for o := range m.replaces {
			orig = append(orig, o)
		}
		sort.Strings(orig)
		notes = append(notes, "replaces "+strings.Join(orig, ", "))
	}
	if m.sum != "" {
		notes = append(notes, "go.sum "+m.sum)
	}
	return pkg{
		SPDXID:                m.id,
		Name:                  m.key.path,
		VersionInfo:           m.key.version,
		DownloadLocation:      noAssertion,
		LicenseConcluded:      noAssertion,
		LicenseDeclared:       noAssertion,
		CopyrightText:         noAssertion,
		Comment:               strings.Join(notes, "\n"),
		ExternalRefs:          purlRef(purl(m.key.path, m.key.version)),
		PrimaryPackagePurpose: "LIBRARY",
	}
}

func modString(path, version string) string {
	if version == "" {
		return path
	}
	return path + "@" + version
}

func purlRef(locator string) []externalRef {
	return []externalRef{{
		ReferenceCategory: "PACKAGE-MANAGER",
		ReferenceType:     "purl",
		ReferenceLocator:  locator,
	}}
}

// purl returns the package URL pkg:golang/<path>[@<version>] with each path
// segment and the version percent-encoded. "(devel)" and empty versions are
// left out.
func purl(path, version string) string {
	var sb strings.Builder
	sb.WriteString("pkg:golang/")
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			sb.WriteByte('/')
		}
		sb.WriteString(purlEscape(seg))
	}
	if version != "" && version != develVersion {
		sb.WriteByte('@')
		sb.WriteString(purlEscape(version))
	}
	return sb.String()
}

// purlEscape percent-encodes every byte except the purl spec's unreserved
// characters A-Z a-z 0-9 . - _ ~.
func purlEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == '_' || c == '~' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&0xF])
	}
	return sb.String()
}

// newID returns a fresh SPDX identifier "SPDXRef-<kind>-<sanitized src>",
// where every character outside [A-Za-z0-9.-] becomes '-', suffixed with a
// counter if that identifier is already taken.
func (b *docBuilder) newID(kind, src string) string {
	var sb strings.Builder
	sb.WriteString("SPDXRef-")
	sb.WriteString(kind)
	sb.WriteByte('-')
	for i := 0; i < len(src); i++ {
		c := src[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('-')
		}
	}
	id := sb.String()
	for n := 2; b.ids[id]; n++ {
		id = sb.String() + "-" + strconv.Itoa(n)
	}
	b.ids[id] = true
	return id
}
