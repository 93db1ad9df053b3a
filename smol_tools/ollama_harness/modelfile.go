package main

// The "modelfile" request: parse a Modelfile the way `ollama create -f FILE` does, so tests can
// prove every Modelfile we generate is accepted (REQUIRES, every PARAMETER name and value type)
// without an Ollama binary. An independent re-implementation, standard library only, written
// from reading ollama/ollama at commit fb30760996871fa9460115c753afd2c60d4ab0f7:
//
//   - parser/parser.go: ParseFile (the rune-by-rune state machine: comments, command names,
//     PARAMETER and MESSAGE sub-states, values that end at a newline once their quotes are
//     balanced, non-printable runes dropped outside values' newline/space handling, the
//     flush at end of input, "no FROM line"), isValidCommand, isValidMessageRole, unquote,
//     and CreateRequest (FROM as a local path when one exists, else a model name; REQUIRES
//     validated as semver with an optional "v"; deprecated parameters warned about and
//     dropped; everything else through api.FormatParams; stop lists appended).
//   - api/types.go: FormatParams over the json tags of Options and its embedded Runner (the
//     parameter names and their Go kinds: int, float32, bool, []string, *int, *bool).
//   - types/model/name.go: ParseName/IsFullyQualified, to say how a FROM that is not a file
//     names a model (hf.co/OWNER/REPO:QUANT -> host, namespace, model, tag).
//   - golang.org/x/mod/semver.IsValid (vMAJOR[.MINOR[.PATCH[-pre][+build]]]).
//
// Not mirrored: file digests (the harness reports the path a FROM/ADAPTER/DRAFT resolves to,
// not its sha256), x/text's BOM handling beyond UTF-8 and UTF-16 byte order marks, and what
// the server does after parsing (pulling, layer creation).
//
// Our own check, not Ollama's: "newer_than_requires" lists parameters that appeared in an
// Ollama release later than the Modelfile's REQUIRES (Options at v0.17.5 equals the list
// below except draft_num_predict, added in v0.30.0).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf16"
)

type modelfileRequest struct {
	Text        string `json:"text"`
	RelativeDir string `json:"relative_dir"` // the Modelfile's folder (ollama create passes it)
}

type mfCommand struct {
	Name string `json:"name"`
	Args string `json:"args"`
}

type mfState int

const (
	mfNil mfState = iota
	mfName
	mfValue
	mfParameter
	mfMessage
	mfComment
)

var (
	errMFMissingFrom   = errors.New("no FROM line")
	errMFInvalidRole   = errors.New("message role must be one of \"system\", \"user\", or \"assistant\"")
	errMFInvalidComand = errors.New("command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"")
)

// Parameter kinds of api.Options (with api.Runner), keyed by json tag.
const (
	kindInt = iota
	kindFloat
	kindBool
	kindStrings
	kindIntPtr
	kindBoolPtr
)

var ollamaOptionKinds = map[string]int{
	// Runner
	"num_ctx": kindInt, "num_batch": kindInt, "num_gpu": kindInt, "main_gpu": kindIntPtr,
	"use_mmap": kindBoolPtr, "num_thread": kindInt, "draft_num_predict": kindInt,
	// Options
	"num_keep": kindInt, "seed": kindInt, "num_predict": kindInt, "top_k": kindInt,
	"top_p": kindFloat, "min_p": kindFloat, "typical_p": kindFloat, "repeat_last_n": kindInt,
	"temperature": kindFloat, "repeat_penalty": kindFloat, "presence_penalty": kindFloat,
	"frequency_penalty": kindFloat, "stop": kindStrings,
}

// First Ollama release with each parameter, where later than 0.17.5 (see above).
var ollamaOptionSince = map[string]string{"draft_num_predict": "0.30.0"}

var deprecatedOllamaParameters = map[string]bool{
	"penalize_newline": true, "low_vram": true, "f16_kv": true, "logits_all": true,
	"vocab_only": true, "use_mlock": true, "mirostat": true, "mirostat_tau": true, "mirostat_eta": true,
}

func mfIsAlpha(r rune) bool   { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
func mfIsNumber(r rune) bool  { return r >= '0' && r <= '9' }
func mfIsSpace(r rune) bool   { return r == ' ' || r == '\t' }
func mfIsNewline(r rune) bool { return r == '\r' || r == '\n' }

func mfValidCommand(s string) bool {
	switch strings.ToLower(s) {
	case "from", "license", "template", "system", "adapter", "draft", "renderer", "parser",
		"parameter", "message", "requires":
		return true
	}
	return false
}

// mfStep is the transition table: the next state, the rune to keep (0: none) or an error.
func mfStep(r rune, s mfState) (mfState, rune, error) {
	switch s {
	case mfNil:
		if r == '#' {
			return mfComment, 0, nil
		}
		if mfIsSpace(r) || mfIsNewline(r) {
			return mfNil, 0, nil
		}
		return mfName, r, nil
	case mfName:
		if mfIsAlpha(r) {
			return mfName, r, nil
		}
		if mfIsSpace(r) {
			return mfValue, 0, nil
		}
		return mfNil, 0, errMFInvalidComand
	case mfValue:
		if mfIsNewline(r) || mfIsSpace(r) {
			return mfNil, r, nil // a candidate end; kept when the quotes are not balanced yet
		}
		return mfValue, r, nil
	case mfParameter:
		if mfIsAlpha(r) || mfIsNumber(r) || r == '_' {
			return mfParameter, r, nil
		}
		if mfIsSpace(r) {
			return mfValue, 0, nil
		}
		return mfNil, 0, io.ErrUnexpectedEOF
	case mfMessage:
		if mfIsAlpha(r) {
			return mfMessage, r, nil
		}
		if mfIsSpace(r) {
			return mfValue, 0, nil
		}
		return mfNil, 0, io.ErrUnexpectedEOF
	case mfComment:
		if mfIsNewline(r) {
			return mfNil, 0, nil
		}
		return mfComment, 0, nil
	}
	return mfNil, 0, errors.New("")
}

// mfUnquote strips one pair of """ or " quotes; false while a quote is still open.
func mfUnquote(s string) (string, bool) {
	if strings.HasPrefix(s, `"""`) {
		if len(s) >= 6 && strings.HasSuffix(s, `"""`) {
			return s[3 : len(s)-3], true
		}
		return "", false
	}
	if strings.HasPrefix(s, `"`) {
		if len(s) >= 2 && strings.HasSuffix(s, `"`) {
			return s[1 : len(s)-1], true
		}
		return "", false
	}
	return s, true
}

// mfDecode turns the file's bytes into text: a UTF-8 byte order mark is dropped and UTF-16
// (with its byte order mark) decoded, as Ollama's BOM-aware reader does.
func mfDecode(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return string(b[3:])
	case len(b) >= 2 && (b[0] == 0xFF && b[1] == 0xFE || b[0] == 0xFE && b[1] == 0xFF):
		little := b[0] == 0xFF
		units := make([]uint16, 0, len(b)/2)
		for i := 2; i+1 < len(b); i += 2 {
			if little {
				units = append(units, uint16(b[i])|uint16(b[i+1])<<8)
			} else {
				units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
			}
		}
		return string(utf16.Decode(units))
	}
	return string(b)
}

func parseModelfile(text string) ([]mfCommand, error) {
	var cmds []mfCommand
	var cmd mfCommand
	var buf strings.Builder
	var role string
	state := mfNil
	line := 1
	lineErr := func(msg string) error { return fmt.Errorf("(line %d): %s", line, msg) }

	br := bufio.NewReader(strings.NewReader(text))
	for {
		r, _, err := br.ReadRune()
		if err == io.EOF {
			break
		}
		if mfIsNewline(r) {
			line++
		}
		next, kept, err := mfStep(r, state)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %s", err, buf.String())
		} else if err != nil {
			return nil, lineErr(err.Error())
		}
		r = kept
		if next != state {
			switch state {
			case mfName:
				word := buf.String()
				if !mfValidCommand(word) {
					return nil, lineErr(errMFInvalidComand.Error())
				}
				switch lower := strings.ToLower(word); lower {
				case "from":
					cmd.Name = "model"
				case "parameter":
					next = mfParameter // its name comes next
				case "message":
					next = mfMessage // its role comes next
					cmd.Name = lower
				default:
					cmd.Name = lower
				}
			case mfParameter:
				cmd.Name = buf.String() // case kept: FormatParams matches json tags exactly
			case mfMessage:
				if word := buf.String(); word != "system" && word != "user" && word != "assistant" {
					return nil, lineErr(errMFInvalidRole.Error())
				} else {
					role = word
				}
			case mfValue:
				value, ok := mfUnquote(strings.TrimSpace(buf.String()))
				if !ok || mfIsSpace(r) {
					buf.WriteRune(r) // inside an open quote, or a space within the value
					continue
				}
				if role != "" {
					value = role + ": " + value
					role = ""
				}
				cmd.Args = value
				cmds = append(cmds, cmd)
			}
			buf.Reset()
			state = next
		}
		if strconv.IsPrint(r) {
			buf.WriteRune(r)
		}
	}

	switch state {
	case mfNil, mfComment:
	case mfValue:
		value, ok := mfUnquote(strings.TrimSpace(buf.String()))
		if !ok {
			return nil, io.ErrUnexpectedEOF
		}
		if role != "" {
			value = role + ": " + value
		}
		cmd.Args = value
		cmds = append(cmds, cmd)
	default:
		return nil, io.ErrUnexpectedEOF
	}
	for _, c := range cmds {
		if c.Name == "model" {
			return cmds, nil
		}
	}
	return nil, errMFMissingFrom
}

// ---- semver (golang.org/x/mod/semver.IsValid) -------------------------------------------------

func semverNum(s string) (string, string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || (i > 1 && s[0] == '0') {
		return "", s, false
	}
	return s[:i], s[i:], true
}

func semverIdents(s string, numericNoLeadingZero bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		digits := true
		for _, c := range id {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
			digits = digits && c >= '0' && c <= '9'
		}
		if numericNoLeadingZero && digits && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

func semverValid(v string) bool {
	if !strings.HasPrefix(v, "v") {
		return false
	}
	rest := v[1:]
	var ok bool
	if _, rest, ok = semverNum(rest); !ok {
		return false
	}
	if rest == "" {
		return true // vMAJOR
	}
	if rest[0] != '.' {
		return false
	}
	if _, rest, ok = semverNum(rest[1:]); !ok {
		return false
	}
	if rest == "" {
		return true // vMAJOR.MINOR
	}
	if rest[0] != '.' {
		return false
	}
	if _, rest, ok = semverNum(rest[1:]); !ok {
		return false
	}
	if strings.HasPrefix(rest, "-") {
		end := strings.IndexByte(rest, '+')
		if end < 0 {
			end = len(rest)
		}
		if !semverIdents(rest[1:end], true) {
			return false
		}
		rest = rest[end:]
	}
	if strings.HasPrefix(rest, "+") {
		if !semverIdents(rest[1:], false) {
			return false
		}
		rest = ""
	}
	return rest == ""
}

// versionLess compares MAJOR.MINOR.PATCH numerically (pre-release tags ignored).
func versionLess(a, b string) bool {
	parts := func(v string) [3]int {
		var out [3]int
		v = strings.TrimPrefix(v, "v")
		if i := strings.IndexAny(v, "-+"); i >= 0 {
			v = v[:i]
		}
		for i, p := range strings.SplitN(v, ".", 3) {
			out[i], _ = strconv.Atoi(p)
		}
		return out
	}
	pa, pb := parts(a), parts(b)
	for i := 0; i < 3; i++ {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

// ---- model names (types/model/name.go) -------------------------------------------------------

type modelName struct {
	Host      string `json:"host"`
	Namespace string `json:"namespace"`
	Model     string `json:"model"`
	Tag       string `json:"tag"`
	Valid     bool   `json:"valid"`
}

func cutLastPromised(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	before, after := s[:i], s[i+len(sep):]
	if before == "" {
		before = "!MISSING!"
	}
	if after == "" {
		after = "!MISSING!"
	}
	return before, after, true
}

func nameChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

func namePartValid(kind string, s string) bool {
	limit := 80
	if kind == "host" {
		limit = 350
	}
	if len(s) < 1 || len(s) > limit || !nameChar(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_' || c == '-':
		case c == '.':
			if kind == "namespace" {
				return false
			}
		case c == ':':
			if kind != "host" {
				return false
			}
		case !nameChar(c):
			return false
		}
	}
	return true
}

func parseModelName(s string) modelName {
	var n modelName
	if strings.LastIndex(s, ":") > strings.LastIndex(s, "/") {
		s, n.Tag, _ = cutLastPromised(s, ":")
	}
	var more bool
	if s, n.Model, more = cutLastPromised(s, "/"); !more {
		n.Model = s
	} else if s, n.Namespace, more = cutLastPromised(s, "/"); !more {
		n.Namespace = s
	} else {
		if _, host, found := strings.Cut(s, "://"); found {
			s = host
		}
		n.Host = s
	}
	// Defaults, as Merge(ParseNameBare(s), DefaultName()) fills them.
	if n.Host == "" {
		n.Host = "registry.ollama.ai"
	}
	if n.Namespace == "" {
		n.Namespace = "library"
	}
	if n.Tag == "" {
		n.Tag = "latest"
	}
	n.Valid = namePartValid("host", n.Host) && namePartValid("namespace", n.Namespace) &&
		namePartValid("model", n.Model) && namePartValid("tag", n.Tag)
	return n
}

// ---- CreateRequest --------------------------------------------------------------------------

func expandModelfilePath(path, relativeDir string) (string, error) {
	switch {
	case filepath.IsAbs(path) || strings.HasPrefix(path, "/") || strings.HasPrefix(path, "\\"):
	case path == "~" || strings.HasPrefix(path, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("failed to get current user: %w", err)
		}
		path = filepath.Join(home, strings.TrimPrefix(path, "~"))
	case strings.HasPrefix(path, "~"):
		return "", fmt.Errorf("failed to find user '%s' (not mirrored)", strings.SplitN(path[1:], "/", 2)[0])
	default:
		path = filepath.Join(relativeDir, path)
	}
	return filepath.Abs(path)
}

func formatParam(name, value string) (any, error) {
	kind, ok := ollamaOptionKinds[name]
	if !ok {
		return nil, fmt.Errorf("unknown parameter '%s'", name)
	}
	shown := fmt.Sprintf("%v", []string{value})
	switch kind {
	case kindFloat:
		f, err := strconv.ParseFloat(value, 32)
		if err != nil {
			return nil, fmt.Errorf("invalid float value %s", shown)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 32)), nil
	case kindInt, kindIntPtr:
		i, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid int value %s", shown)
		}
		return i, nil
	case kindBool, kindBoolPtr:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return nil, fmt.Errorf("invalid bool value %s", shown)
		}
		return b, nil
	default: // []string
		return []string{value}, nil
	}
}

func createRequest(cmds []mfCommand, relativeDir string) (map[string]any, error) {
	out := map[string]any{}
	params := map[string]any{}
	var licenses []string
	warnings, newer := []string{}, []string{}
	var messages []map[string]string
	for _, c := range cmds {
		switch c.Name {
		case "model", "adapter", "draft":
			path, err := expandModelfilePath(c.Args, relativeDir)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(path); err != nil {
				if c.Name == "model" && errors.Is(err, os.ErrNotExist) {
					out["from"] = c.Args // not a file here: a model name to pull
					out["from_name"] = parseModelName(c.Args)
					continue
				}
				return nil, err
			}
			out[map[string]string{"model": "from_path", "adapter": "adapter_path", "draft": "draft_path"}[c.Name]] = path
		case "template", "system", "renderer", "parser":
			out[c.Name] = c.Args
		case "license":
			licenses = append(licenses, c.Args)
		case "requires":
			v := c.Args
			if !strings.HasPrefix(v, "v") {
				v = "v" + v
			}
			if !semverValid(v) {
				return nil, errors.New("requires must be a valid semver (e.g. 0.14.0)")
			}
			out["requires"] = strings.TrimPrefix(v, "v")
		case "message":
			role, content, _ := strings.Cut(c.Args, ": ")
			messages = append(messages, map[string]string{"role": role, "content": content})
		default:
			if deprecatedOllamaParameters[c.Name] {
				warnings = append(warnings, fmt.Sprintf("parameter %s is deprecated", c.Name))
				continue
			}
			v, err := formatParam(c.Name, c.Args)
			if err != nil {
				return nil, err
			}
			if list, ok := params[c.Name].([]string); ok {
				params[c.Name] = append(list, v.([]string)...)
			} else {
				params[c.Name] = v
			}
		}
	}
	if requires, ok := out["requires"].(string); ok {
		for name := range params {
			if since, known := ollamaOptionSince[name]; known && versionLess(requires, since) {
				newer = append(newer, name)
			}
		}
	}
	if len(params) > 0 {
		out["parameters"] = params
	}
	if len(messages) > 0 {
		out["messages"] = messages
	}
	if len(licenses) > 0 {
		out["license"] = licenses
	}
	out["warnings"] = warnings
	out["newer_than_requires"] = newer
	return out, nil
}

func runModelfile(req *modelfileRequest, stdout io.Writer) error {
	cmds, err := parseModelfile(mfDecode([]byte(req.Text)))
	if err != nil {
		return err
	}
	relativeDir := req.RelativeDir
	if relativeDir == "" {
		relativeDir = "."
	}
	report, err := createRequest(cmds, relativeDir)
	if err != nil {
		return err
	}
	report["commands"] = cmds
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(report)
}
