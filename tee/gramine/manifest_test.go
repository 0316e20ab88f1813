package gramine_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// manifestTemplate is the Gramine manifest template of integritee-enclave.
const manifestTemplate = "../../deploy/gramine/integritee-enclave.manifest.template"

// TestManifestTemplate renders the manifest template as gramine-manifest
// would, with the variables and functions it uses, parses it as TOML and
// checks what the enclave needs of Gramine: DCAP attestation (the
// /dev/attestation files this backend reads), a production enclave, a
// command line the host cannot change, the binary as a trusted file and
// no host file or environment let in.
func TestManifestTemplate(t *testing.T) {
	raw, err := os.ReadFile(manifestTemplate)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"gramine.libos":        "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so",
		"gramine.runtimedir()": "/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc",
		"entrypoint":           "integritee-enclave",
		"log_level":            "error",
	}
	jinja := regexp.MustCompile(`{{\s*([^}]*?)\s*}}`)
	var unknown []string
	rendered := jinja.ReplaceAllStringFunc(string(raw), func(m string) string {
		name := jinja.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, name)
		}
		return v
	})
	if len(unknown) > 0 {
		t.Fatalf("template uses %q, which the test does not render", unknown)
	}
	if strings.Contains(rendered, "{%") {
		t.Fatal("template has Jinja statements the test does not render")
	}
	var m struct {
		Loader struct {
			Entrypoint          string         `toml:"entrypoint"`
			LogLevel            string         `toml:"log_level"`
			Argv                []string       `toml:"argv"`
			Env                 map[string]any `toml:"env"`
			InsecureCmdlineArgv bool           `toml:"insecure__use_cmdline_argv"`
			InsecureHostEnv     bool           `toml:"insecure__use_host_env"`
		} `toml:"loader"`
		LibOS struct {
			Entrypoint string `toml:"entrypoint"`
		} `toml:"libos"`
		Sys map[string]any `toml:"sys"`
		FS  struct {
			Mounts []struct {
				Type string `toml:"type"`
				Path string `toml:"path"`
				URI  string `toml:"uri"`
			} `toml:"mounts"`
		} `toml:"fs"`
		SGX struct {
			Debug             bool     `toml:"debug"`
			EDMM              bool     `toml:"edmm_enable"`
			RemoteAttestation string   `toml:"remote_attestation"`
			EnclaveSize       string   `toml:"enclave_size"`
			MaxThreads        int      `toml:"max_threads"`
			TrustedFiles      []string `toml:"trusted_files"`
			AllowedFiles      []string `toml:"allowed_files"`
			ISVProdID         int      `toml:"isvprodid"`
			ISVSVN            int      `toml:"isvsvn"`
		} `toml:"sgx"`
	}
	md, err := toml.Decode(rendered, &m)
	if err != nil {
		t.Fatalf("rendered manifest is not TOML: %v", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Errorf("keys the test does not check: %v", und)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"loader.entrypoint is the LibOS", m.Loader.Entrypoint == "file:"+vars["gramine.libos"]},
		{"libos.entrypoint is the mounted binary", m.LibOS.Entrypoint == "/integritee-enclave"},
		{"loader.log_level is set", m.Loader.LogLevel == "error"},
		{"argv fixed to the Gramine backend", slices.Equal(m.Loader.Argv, []string{"integritee-enclave", "--tee", "gramine"})},
		{"no host command line", !m.Loader.InsecureCmdlineArgv},
		{"no host environment", !m.Loader.InsecureHostEnv},
		{"production enclave", !m.SGX.Debug},
		{"DCAP attestation (/dev/attestation/quote)", m.SGX.RemoteAttestation == "dcap"},
		{"enclave size set", m.SGX.EnclaveSize != ""},
		{"threads for the Go runtime", m.SGX.MaxThreads >= 16},
		{"no allowed (unchecked) host files", len(m.SGX.AllowedFiles) == 0},
		{"the binary is trusted", slices.Contains(m.SGX.TrustedFiles, "file:integritee-enclave")},
		{"the runtime is trusted", slices.Contains(m.SGX.TrustedFiles, "file:"+vars["gramine.runtimedir()"]+"/")},
		{"ISV product ID and SVN set", m.SGX.ISVProdID > 0 && m.SGX.ISVSVN > 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("manifest: want %s", c.what)
		}
	}
	for k, v := range m.Sys {
		if strings.HasPrefix(k, "insecure__") && v != false {
			t.Errorf("manifest sets sys.%s", k)
		}
	}
	for k, v := range m.Loader.Env {
		if tbl, ok := v.(map[string]any); ok && tbl["passthrough"] == true {
			t.Errorf("manifest passes the host's %s through", k)
		}
	}
	mounted := map[string]string{}
	for _, mt := range m.FS.Mounts {
		if mt.Type != "" && mt.Type != "chroot" {
			t.Errorf("mount %s of type %s: the enclave keeps no files", mt.Path, mt.Type)
		}
		mounted[mt.Path] = mt.URI
	}
	if mounted["/integritee-enclave"] != "file:integritee-enclave" || mounted["/lib"] != "file:"+vars["gramine.runtimedir()"] || len(mounted) != 2 {
		t.Errorf("mounts %v: want the binary and Gramine's runtime only", mounted)
	}
}
