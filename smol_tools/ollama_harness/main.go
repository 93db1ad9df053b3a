// Command ollama-render renders a Go chat TEMPLATE exactly the way Ollama's
// /api/chat hands it data, so tests can prove templates/smol-tools.gotmpl
// produces the same prompt bytes as templates/smol-tools.jinja without an
// Ollama server.
//
// It is a faithful, independent re-implementation (standard library only) of
// the parts of Ollama (github.com/ollama/ollama) that reach a template:
//
//   - api/types.go: Message (role lower-cased on decode), ToolCall,
//     ToolCallFunction, ToolCallFunctionArguments and ToolPropertiesMap
//     (insertion-ordered maps; values decoded with encoding/json, so nested
//     objects become plain map[string]any), Tool, ToolFunction,
//     ToolFunctionParameters, ToolProperty (only anyOf/type/items/description/
//     enum/properties/required survive decoding), PropertyType, ThinkValue;
//     the field order and JSON tags are the same, because the template's
//     `json` helper marshals these structs.
//   - internal/orderedmap/orderedmap.go (over wk8/go-ordered-map): key order
//     kept on decode, ToMap() returns a plain (unordered) Go map.
//   - template/template.go: the helper funcs (json = encoding/json.Marshal, so
//     HTML-escaping <, >, & and sorting map keys; currentDate; yesterdayDate;
//     toTypeScriptType), Option("missingkey=zero"), Vars/Identifiers,
//     collate (system messages joined; consecutive same-role non-tool messages
//     merged with "\n\n"), the template-only copies of tools and messages
//     (templateTool..., templateMessage, templateToolCall whose Arguments is a
//     plain map) and the map handed to Execute: System, Messages, Tools,
//     Response, Think, ThinkLevel, IsThinkSet.
//   - server/prompt.go (renderPrompt): Think = think.Bool(), ThinkLevel =
//     think.String(), IsThinkSet = think != nil. Truncation to num_ctx and
//     image tags ([img-N]) are not mirrored: the harness takes text only and
//     renders every message.
//   - tools/template.go (parseTag) and thinking/template.go (InferTags): the
//     rules by which Ollama finds the tool-call prefix and the thinking tags in
//     a template; reported by the "inspect" request.
//   - The "extract" request: what /api/chat returns for a given model output,
//     read from ollama commit fb30760996871fa9460115c753afd2c60d4ab0f7
//     (2026-08): thinking/parser.go (Parser.AddContent, overlap),
//     tools/tools.go (Parser.Add, findTag, parseToolCall, findTool,
//     findArguments, done, Content), and in server/routes.go the ChatHandler
//     pieces that use them: think defaulting to true for a model whose
//     template has thinking tags, the thinking parser pre-fed the opening tag
//     when the rendered prompt ends with it, tools.NewParser only when the
//     request has tools, the per-chunk completion callback (including its
//     branch that keeps content and discards calls parsed in the same chunk)
//     and writeChatResponse's summing of chunks. The output is cut at the first
//     stop string, as the runner (llama-server) never streams a stop string or
//     what follows it, then fed in one or more chunkings (see chunkText).
//     This is the path a GGUF model with a Modelfile TEMPLATE and no
//     RENDERER/PARSER takes (server/images.go keeps the Go template when both
//     templates have tools, thinking and a tool round trip, as ours do).
//     Checked once by running Ollama's own tools/tools_test.go,
//     tools/template_test.go and thinking/parser_test.go (same commit; 132
//     subtests) against these functions through thin adapters, outside this
//     repository; the route logic (replyFor) has no such upstream test.
//
// Not mirrored for "extract": Ollama's built-in model parsers
// (model/parsers, chosen by a PARSER line; we ship none), harmony, the
// llama-server "native" chat mode (used when the Go template is not), tool
// call ids (random), logprobs, structured outputs (format), and the runner's
// real tokenizer: "tokens" chunking approximates one token per chunk. Where
// Ollama iterates a Go map (argument key order; which nested object wins in
// findArguments' search of an object without "name") the result is random in
// Ollama; here keys are sorted.
//
// Not mirrored: range-over-func/int in templates (Go >= 1.24 features of
// Ollama's toolchain; templates meant for this harness must not use them) and
// ToolPropertiesMap.All (an iter.Seq2, which Go 1.19 lacks).
//
// Input (stdin, JSON):
//
//	{"template": "...", "messages": [Ollama messages], "tools": [Ollama tools],
//	 "think": true|false|"low"|"medium"|"high"|null, "add_generation_prompt": bool,
//	 "inspect": bool,
//	 "extract": {"output": "raw model text", "stop": ["<|im_end|>", ...],
//	             "chunkings": ["tokens", "runes", "whole", 3, ...]}}
//
// Or, to parse a Modelfile as `ollama create -f` does (see modelfile.go):
//
//	{"modelfile": {"text": "...", "relative_dir": "folder of the Modelfile"}}
//
// Output: the rendered prompt on stdout with nothing added, or with
// "inspect": true a JSON report of what Ollama would detect in the template,
// or with "extract" a JSON report: tool_call_tag, thinking_tags, think (as
// the server resolved it), prompt_opens_think, tool_parser, generated (the
// output after the stop cut) and replies: for each chunking,
// {"chunking", "chunks", "reply": {"thinking", "content", "tool_calls":
// [{"index", "name", "arguments"}], "dropped_tool_calls"}}.
// Errors go to stderr with exit status 1.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
)

// ---------------------------------------------------------------------------
// Ordered map (Ollama: internal/orderedmap, backed by wk8/go-ordered-map/v2).

type orderedMap[V any] struct {
	keys []string
	vals map[string]V
}

func newOrderedMap[V any]() *orderedMap[V] {
	return &orderedMap[V]{vals: map[string]V{}}
}

func (m *orderedMap[V]) Get(key string) (V, bool) {
	var zero V
	if m == nil {
		return zero, false
	}
	v, ok := m.vals[key]
	return v, ok
}

// Set keeps the first position of a key that is set again (as wk8 does).
func (m *orderedMap[V]) Set(key string, value V) {
	if _, ok := m.vals[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.vals[key] = value
}

func (m *orderedMap[V]) Len() int {
	if m == nil {
		return 0
	}
	return len(m.keys)
}

func (m *orderedMap[V]) ToMap() map[string]V {
	if m == nil {
		return nil
	}
	out := make(map[string]V, len(m.keys))
	for _, k := range m.keys {
		out[k] = m.vals[k]
	}
	return out
}

func (m *orderedMap[V]) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range m.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(m.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON keeps the key order of the input; each value is decoded on its
// own with encoding/json, so nested objects are plain map[string]any.
func (m *orderedMap[V]) UnmarshalJSON(data []byte) error {
	*m = orderedMap[V]{vals: map[string]V{}}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("expected a JSON object, got %s", bytes.TrimSpace(data))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key is not a string: %v", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		var value V
		if err := json.Unmarshal(raw, &value); err != nil {
			return err
		}
		m.Set(key, value)
	}
	_, err = dec.Token()
	return err
}

// ---------------------------------------------------------------------------
// api/types.go

type ImageData []byte

type Message struct {
	Role       string      `json:"role"`
	Content    string      `json:"content"`
	Thinking   string      `json:"thinking,omitempty"`
	Images     []ImageData `json:"images,omitempty"`
	ToolCalls  []ToolCall  `json:"tool_calls,omitempty"`
	ToolName   string      `json:"tool_name,omitempty"`
	ToolCallID string      `json:"tool_call_id,omitempty"`
}

// UnmarshalJSON lower-cases the role, as Ollama does.
func (m *Message) UnmarshalJSON(b []byte) error {
	type plain Message
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*m = Message(p)
	m.Role = strings.ToLower(m.Role)
	return nil
}

type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Function ToolCallFunction `json:"function"`
}

type ToolCallFunction struct {
	Index     int                       `json:"index"`
	Name      string                    `json:"name"`
	Arguments ToolCallFunctionArguments `json:"arguments"`
}

// ToolCallFunctionArguments keeps insertion order (Ollama's newest API); the
// template only ever sees ToMap(), a plain map.
type ToolCallFunctionArguments struct {
	om *orderedMap[any]
}

func (t *ToolCallFunctionArguments) Get(key string) (any, bool) { return t.om.Get(key) }
func (t *ToolCallFunctionArguments) Len() int                   { return t.om.Len() }
func (t *ToolCallFunctionArguments) ToMap() map[string]any      { return t.om.ToMap() }

func (t *ToolCallFunctionArguments) String() string {
	if t.om == nil {
		return "{}"
	}
	b, _ := json.Marshal(t.om)
	return string(b)
}

func (t *ToolCallFunctionArguments) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		t.om = nil
		return nil
	}
	t.om = newOrderedMap[any]()
	return t.om.UnmarshalJSON(data)
}

func (t ToolCallFunctionArguments) MarshalJSON() ([]byte, error) {
	if t.om == nil {
		return []byte("{}"), nil
	}
	return t.om.MarshalJSON()
}

type Tools []Tool

func (t Tools) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type Tool struct {
	Type     string       `json:"type"`
	Items    any          `json:"items,omitempty"`
	Function ToolFunction `json:"function"`
}

func (t Tool) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

// PropertyType is a JSON Schema "type": one string or a list of strings.
type PropertyType []string

func (pt *PropertyType) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*pt = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	*pt = many
	return nil
}

func (pt PropertyType) MarshalJSON() ([]byte, error) {
	if len(pt) == 1 {
		return json.Marshal(pt[0])
	}
	return json.Marshal([]string(pt))
}

func (pt PropertyType) String() string {
	switch len(pt) {
	case 0:
		return ""
	case 1:
		return pt[0]
	}
	return fmt.Sprintf("%v", []string(pt))
}

type ToolPropertiesMap struct {
	om *orderedMap[ToolProperty]
}

func (t *ToolPropertiesMap) Get(key string) (ToolProperty, bool) {
	if t == nil {
		return ToolProperty{}, false
	}
	return t.om.Get(key)
}

func (t *ToolPropertiesMap) Len() int {
	if t == nil {
		return 0
	}
	return t.om.Len()
}

func (t *ToolPropertiesMap) ToMap() map[string]ToolProperty {
	if t == nil {
		return nil
	}
	return t.om.ToMap()
}

func (t ToolPropertiesMap) MarshalJSON() ([]byte, error) {
	if t.om == nil {
		return []byte("null"), nil
	}
	return t.om.MarshalJSON()
}

func (t *ToolPropertiesMap) UnmarshalJSON(data []byte) error {
	t.om = newOrderedMap[ToolProperty]()
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	return t.om.UnmarshalJSON(data)
}

// ToolProperty: only these JSON Schema keywords survive Ollama's decoding.
type ToolProperty struct {
	AnyOf       []ToolProperty     `json:"anyOf,omitempty"`
	Type        PropertyType       `json:"type,omitempty"`
	Items       any                `json:"items,omitempty"`
	Description string             `json:"description,omitempty"`
	Enum        []any              `json:"enum,omitempty"`
	Properties  *ToolPropertiesMap `json:"properties,omitempty"`
	Required    []string           `json:"required,omitempty"`
}

func (tp ToolProperty) ToTypeScriptType() string {
	if len(tp.AnyOf) > 0 {
		parts := make([]string, 0, len(tp.AnyOf))
		for _, alt := range tp.AnyOf {
			parts = append(parts, alt.ToTypeScriptType())
		}
		return strings.Join(parts, " | ")
	}
	if len(tp.Type) == 0 {
		return "any"
	}
	parts := make([]string, 0, len(tp.Type))
	for _, t := range tp.Type {
		parts = append(parts, jsonTypeToTypeScript(t))
	}
	return strings.Join(parts, " | ")
}

func jsonTypeToTypeScript(t string) string {
	switch t {
	case "string":
		return "string"
	case "number", "integer":
		return "number"
	case "boolean":
		return "boolean"
	case "array":
		return "any[]"
	case "object":
		return "Record<string, any>"
	case "null":
		return "null"
	}
	return "any"
}

type ToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties *ToolPropertiesMap `json:"properties"`
}

type ToolFunction struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description,omitempty"`
	Parameters  ToolFunctionParameters `json:"parameters"`
}

// ThinkValue is the request's "think": a bool or a level string.
type ThinkValue struct {
	Value any
}

func (t *ThinkValue) Bool() bool {
	if t == nil || t.Value == nil {
		return false
	}
	switch v := t.Value.(type) {
	case bool:
		return v
	case string:
		return v == "high" || v == "medium" || v == "low" || v == "max"
	}
	return false
}

func (t *ThinkValue) String() string {
	if t == nil || t.Value == nil {
		return ""
	}
	switch v := t.Value.(type) {
	case string:
		return v
	case bool:
		if v {
			return "medium"
		}
	}
	return ""
}

func (t *ThinkValue) UnmarshalJSON(data []byte) error {
	var b bool
	if err := json.Unmarshal(data, &b); err == nil {
		t.Value = b
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		if s != "high" && s != "medium" && s != "low" && s != "max" {
			return fmt.Errorf("invalid think value %q (want true, false, \"low\", \"medium\", \"high\" or \"max\")", s)
		}
		t.Value = s
		return nil
	}
	return errors.New("think must be a boolean, a level string or null")
}

// ---------------------------------------------------------------------------
// template/template.go

var funcs = template.FuncMap{
	// encoding/json as-is: compact, HTML-escaping, map keys sorted.
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	// The format argument is accepted and ignored, as in Ollama.
	"currentDate": func(args ...string) string {
		return time.Now().Format("2006-01-02")
	},
	"yesterdayDate": func(args ...string) string {
		return time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	},
	"toTypeScriptType": func(v any) string {
		switch p := v.(type) {
		case ToolProperty:
			return p.ToTypeScriptType()
		case *ToolProperty:
			if p != nil {
				return p.ToTypeScriptType()
			}
		}
		return "any"
	},
}

func parseTemplate(s string) (*template.Template, []string, error) {
	t, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(s)
	if err != nil {
		return nil, nil, err
	}
	vars, err := templateVars(t)
	if err != nil {
		return nil, nil, err
	}
	return t, vars, nil
}

// templateVars: every identifier of every (defined) template, lower-cased,
// de-duplicated and sorted; Ollama uses it to pick the chat path ("messages")
// and to derive capabilities ("tools").
func templateVars(t *template.Template) ([]string, error) {
	seen := map[string]bool{}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		for _, n := range tt.Root.Nodes {
			ids, err := identifiers(n)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				seen[strings.ToLower(id)] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

func identifiers(n parse.Node) ([]string, error) {
	var out []string
	add := func(ns ...parse.Node) error {
		for _, c := range ns {
			ids, err := identifiers(c)
			if err != nil {
				return err
			}
			out = append(out, ids...)
		}
		return nil
	}
	switch n := n.(type) {
	case *parse.ListNode:
		return out, add(n.Nodes...)
	case *parse.TemplateNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined template specified")
		}
		return identifiers(n.Pipe)
	case *parse.ActionNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined action in template")
		}
		return identifiers(n.Pipe)
	case *parse.IfNode:
		return identifiers(&n.BranchNode)
	case *parse.RangeNode:
		return identifiers(&n.BranchNode)
	case *parse.WithNode:
		return identifiers(&n.BranchNode)
	case *parse.BranchNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined branch")
		}
		if err := add(n.Pipe); err != nil {
			return out, err
		}
		if n.List != nil {
			if err := add(n.List); err != nil {
				return out, err
			}
		}
		if n.ElseList != nil {
			if err := add(n.ElseList); err != nil {
				return out, err
			}
		}
		return out, nil
	case *parse.PipeNode:
		for _, c := range n.Cmds {
			if err := add(c.Args...); err != nil {
				return out, err
			}
		}
		return out, nil
	case *parse.FieldNode:
		return n.Ident, nil
	case *parse.VariableNode:
		return n.Ident, nil
	}
	return nil, nil
}

// collate joins all system messages into one string and merges consecutive
// messages of the same role (tool messages excepted) into the first of them.
// Only Content is merged: the later message's thinking and tool calls are lost.
func collate(msgs []Message) (string, []*Message) {
	var system []string
	var out []*Message
	for i := range msgs {
		if msgs[i].Role == "system" {
			system = append(system, msgs[i].Content)
		}
		if n := len(out); n > 0 && out[n-1].Role == msgs[i].Role && msgs[i].Role != "tool" {
			out[n-1].Content += "\n\n" + msgs[i].Content
		} else {
			out = append(out, &msgs[i])
		}
	}
	return strings.Join(system, "\n\n"), out
}

// The copies of tools, tool calls and messages that templates actually see:
// properties and arguments become plain Go maps (ranged and marshalled in
// sorted key order).

type templateTools []templateTool

func (t templateTools) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type templateArgs map[string]any

func (t templateArgs) String() string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type templateProperties map[string]ToolProperty

func (t templateProperties) String() string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type templateTool struct {
	Type     string               `json:"type"`
	Items    any                  `json:"items,omitempty"`
	Function templateToolFunction `json:"function"`
}

func (t templateTool) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type templateToolFunction struct {
	Name        string                         `json:"name"`
	Description string                         `json:"description"`
	Parameters  templateToolFunctionParameters `json:"parameters"`
}

type templateToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties templateProperties `json:"properties"`
}

type templateToolCall struct {
	ID       string
	Function templateToolCallFunction
}

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments templateArgs
}

type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     []ImageData
	ToolCalls  []templateToolCall
	ToolName   string
	ToolCallID string
}

func toolsForTemplate(tools Tools) templateTools {
	if tools == nil {
		return nil
	}
	out := make(templateTools, len(tools))
	for i, t := range tools {
		p := t.Function.Parameters
		out[i] = templateTool{
			Type:  t.Type,
			Items: t.Items,
			Function: templateToolFunction{
				Name:        t.Function.Name,
				Description: t.Function.Description,
				Parameters: templateToolFunctionParameters{
					Type:       p.Type,
					Defs:       p.Defs,
					Items:      p.Items,
					Required:   p.Required,
					Properties: templateProperties(p.Properties.ToMap()),
				},
			},
		}
	}
	return out
}

func messagesForTemplate(msgs []*Message) []*templateMessage {
	if msgs == nil {
		return nil
	}
	out := make([]*templateMessage, len(msgs))
	for i, m := range msgs {
		var calls []templateToolCall
		for _, tc := range m.ToolCalls {
			calls = append(calls, templateToolCall{
				ID: tc.ID,
				Function: templateToolCallFunction{
					Index:     tc.Function.Index,
					Name:      tc.Function.Name,
					Arguments: templateArgs(tc.Function.Arguments.ToMap()),
				},
			})
		}
		out[i] = &templateMessage{
			Role: m.Role, Content: m.Content, Thinking: m.Thinking, Images: m.Images,
			ToolCalls: calls, ToolName: m.ToolName, ToolCallID: m.ToolCallID,
		}
	}
	return out
}

// render is Ollama's renderPrompt + Template.Execute for templates that use
// .Messages (the only path /api/chat takes for such templates).
func render(w io.Writer, t *template.Template, msgs []Message, tools Tools, think *ThinkValue) error {
	system, collated := collate(msgs)
	return t.Execute(w, map[string]any{
		"System":     system,
		"Messages":   messagesForTemplate(collated),
		"Tools":      toolsForTemplate(tools),
		"Response":   "",
		"Think":      think.Bool(),
		"ThinkLevel": think.String(),
		"IsThinkSet": think != nil,
	})
}

// ---------------------------------------------------------------------------
// tools/template.go: the tool-call prefix Ollama's parser waits for.

func toolCallTag(t *template.Template) string {
	if t == nil || t.Tree == nil {
		return "{"
	}
	ifNode := findToolCallsIf(t.Tree.Root.Nodes)
	if ifNode == nil {
		return "{"
	}
	text := firstTextNode(ifNode.List.Nodes)
	if text == nil {
		return "{"
	}
	tag := strings.ReplaceAll(string(text.Text), "\r\n", "\n")
	if i := strings.Index(tag, "{"); i >= 0 {
		tag = tag[:i]
	}
	if tag = strings.TrimSpace(tag); tag == "" {
		return "{"
	}
	return tag
}

// findToolCallsIf: depth-first, the first {{if}} whose pipeline names a field
// (not a $variable) containing ToolCalls.
func findToolCallsIf(nodes []parse.Node) *parse.IfNode {
	mentionsToolCalls := func(n *parse.IfNode) bool {
		for _, cmd := range n.Pipe.Cmds {
			for _, arg := range cmd.Args {
				if f, ok := arg.(*parse.FieldNode); ok {
					for _, id := range f.Ident {
						if id == "ToolCalls" {
							return true
						}
					}
				}
			}
		}
		return false
	}
	search := func(l *parse.ListNode) *parse.IfNode {
		if l == nil {
			return nil
		}
		return findToolCallsIf(l.Nodes)
	}
	for _, node := range nodes {
		switch n := node.(type) {
		case *parse.IfNode:
			if mentionsToolCalls(n) {
				return n
			}
			if r := search(n.List); r != nil {
				return r
			}
			if r := search(n.ElseList); r != nil {
				return r
			}
		case *parse.ListNode:
			if r := findToolCallsIf(n.Nodes); r != nil {
				return r
			}
		case *parse.RangeNode:
			if r := search(n.List); r != nil {
				return r
			}
			if r := search(n.ElseList); r != nil {
				return r
			}
		case *parse.WithNode:
			if r := search(n.List); r != nil {
				return r
			}
			if r := search(n.ElseList); r != nil {
				return r
			}
		}
	}
	return nil
}

// firstTextNode: depth-first, the first text that is not only whitespace; an
// action, or a block without such text, ends the search.
func firstTextNode(nodes []parse.Node) *parse.TextNode {
	block := func(list, elseList *parse.ListNode) (*parse.TextNode, bool) {
		if list != nil {
			if t := firstTextNode(list.Nodes); t != nil {
				return t, true
			}
		}
		if elseList != nil {
			if t := firstTextNode(elseList.Nodes); t != nil {
				return t, true
			}
		}
		return nil, false
	}
	for _, node := range nodes {
		switch n := node.(type) {
		case *parse.TextNode:
			if len(bytes.TrimSpace(n.Text)) > 0 {
				return n
			}
		case *parse.IfNode:
			t, _ := block(n.List, n.ElseList)
			return t
		case *parse.RangeNode:
			t, _ := block(n.List, n.ElseList)
			return t
		case *parse.WithNode:
			t, _ := block(n.List, n.ElseList)
			return t
		case *parse.ListNode:
			if t := firstTextNode(n.Nodes); t != nil {
				return t
			}
		case *parse.ActionNode:
			return nil
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// thinking/template.go: the thinking tags Ollama infers (and from them the
// "thinking" capability): for each {{.Thinking}} field inside a range over
// .Messages, the first and last text nodes of its nearest enclosing list.

func thinkingTags(t *template.Template) (string, string) {
	var open, closing string
	var stack []parse.Node
	var visit func(n parse.Node)
	visit = func(n parse.Node) {
		if n == nil {
			return
		}
		stack = append(stack, n)
		defer func() { stack = stack[:len(stack)-1] }()
		switch x := n.(type) {
		case *parse.FieldNode:
			if len(x.Ident) > 0 && x.Ident[0] == "Thinking" {
				var rng *parse.RangeNode
				for i := len(stack) - 1; i >= 0 && rng == nil; i-- {
					rng, _ = stack[i].(*parse.RangeNode)
				}
				if rng != nil && pipeHasField(rng.Pipe, "Messages") {
					for i := len(stack) - 1; i >= 0; i-- {
						if l, ok := stack[i].(*parse.ListNode); ok {
							if tn, ok := l.Nodes[0].(*parse.TextNode); ok {
								open = strings.TrimSpace(tn.String())
							}
							if tn, ok := l.Nodes[len(l.Nodes)-1].(*parse.TextNode); ok {
								closing = strings.TrimSpace(tn.String())
							}
							break
						}
					}
				}
			}
		case *parse.ListNode:
			for _, c := range x.Nodes {
				visit(c)
			}
		case *parse.BranchNode:
			if x.Pipe != nil {
				visit(x.Pipe)
			}
			if x.List != nil {
				visit(x.List)
			}
			if x.ElseList != nil {
				visit(x.ElseList)
			}
		case *parse.ActionNode:
			visit(x.Pipe)
		case *parse.IfNode:
			visit(&x.BranchNode)
		case *parse.RangeNode:
			visit(&x.BranchNode)
		case *parse.WithNode:
			visit(&x.BranchNode)
		case *parse.TemplateNode:
			if x.Pipe != nil {
				visit(x.Pipe)
			}
		case *parse.PipeNode:
			for _, c := range x.Cmds {
				visit(c)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				visit(a)
			}
		}
	}
	visit(t.Root)
	return open, closing
}

func pipeHasField(p *parse.PipeNode, name string) bool {
	if p == nil {
		return false
	}
	for _, c := range p.Cmds {
		for _, a := range c.Args {
			if f, ok := a.(*parse.FieldNode); ok && len(f.Ident) > 0 && f.Ident[0] == name {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Extraction: what /api/chat returns for a model output. Mirrors, at ollama
// commit fb30760996871fa9460115c753afd2c60d4ab0f7:
//   - thinking/parser.go (Parser.AddContent): the generic <think> splitter;
//   - tools/tools.go (Parser.Add, findTag, findTool, findArguments, done,
//     Content): the generic tool-call parser built from the template's tag;
//   - server/routes.go (ChatHandler's completion callback) and
//     writeChatResponse: how each streamed chunk goes through both parsers and
//     how the pieces are summed into one reply.
// Written from reading that code; the names and structure here are our own.

// thinkSplitter separates reasoning from content the way Ollama's generic
// thinking parser does: an opening tag (after whitespace) starts reasoning,
// the first closing tag ends it, whitespace after either tag is dropped, and
// a possible partial closing tag at the end of a chunk is held back.
type thinkSplitter struct {
	open, close string
	phase       int // one of the think* constants
	pending     string
}

const (
	thinkAwaitOpen = iota
	thinkSkipSpaceAfterOpen
	thinkInside
	thinkSkipSpaceAfterClose
	thinkOver
)

func (s *thinkSplitter) feed(text string) (reasoning, content string) {
	s.pending += text
	var r, c strings.Builder
	for again := true; again; {
		again = false
		switch s.phase {
		case thinkAwaitOpen:
			trimmed := strings.TrimLeftFunc(s.pending, unicode.IsSpace)
			switch {
			case strings.HasPrefix(trimmed, s.open):
				// Everything after the first opening tag (later ones included) is
				// looked at again in the next phase.
				rest := strings.TrimLeftFunc(trimmed[len(s.open):], unicode.IsSpace)
				s.pending = rest
				if rest == "" {
					s.phase = thinkSkipSpaceAfterOpen
				} else {
					s.phase = thinkInside
				}
				again = true
			case strings.HasPrefix(s.open, trimmed):
				// only whitespace, or a prefix of the opening tag: undecided
			default:
				// No opening tag: thinking was skipped; the text is content,
				// with its leading whitespace.
				s.phase = thinkOver
				c.WriteString(s.pending)
				s.pending = ""
			}
		case thinkSkipSpaceAfterOpen:
			trimmed := strings.TrimLeftFunc(s.pending, unicode.IsSpace)
			s.pending = ""
			if trimmed != "" {
				s.phase = thinkInside
				s.pending = trimmed
				again = true
			}
		case thinkInside:
			if i := strings.Index(s.pending, s.close); i >= 0 {
				r.WriteString(s.pending[:i])
				rest := strings.TrimLeftFunc(s.pending[i+len(s.close):], unicode.IsSpace)
				s.pending = ""
				if rest == "" {
					s.phase = thinkSkipSpaceAfterClose
				} else {
					s.phase = thinkOver
				}
				c.WriteString(rest)
			} else if k := suffixPrefixOverlap(s.pending, s.close); k > 0 {
				r.WriteString(s.pending[:len(s.pending)-k])
				s.pending = s.pending[len(s.pending)-k:]
			} else {
				r.WriteString(s.pending)
				s.pending = ""
			}
		case thinkSkipSpaceAfterClose:
			trimmed := strings.TrimLeftFunc(s.pending, unicode.IsSpace)
			s.pending = ""
			if trimmed != "" {
				s.phase = thinkOver
			}
			c.WriteString(trimmed)
		case thinkOver:
			c.WriteString(s.pending)
			s.pending = ""
		}
	}
	return r.String(), c.String()
}

// suffixPrefixOverlap: the length of the longest suffix of s that is a
// prefix of tag.
func suffixPrefixOverlap(s, tag string) int {
	for k := len(tag); k > 0; k-- {
		if k <= len(s) && strings.HasSuffix(s, tag[:k]) {
			return k
		}
	}
	return 0
}

// extractedCall is one api.ToolCall as /api/chat returns it (the random
// call id is left out).
type extractedCall struct {
	Index     int            `json:"index"`
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

// callScanner is Ollama's generic tool-call parser. Its rules, which decide
// what a user gets back:
//   - text before the tag is content; from the tag on, nothing is content
//     again (unless the tag is "{" or "[");
//   - the call's NAME is not read from the JSON: it is the declared tool whose
//     name occurs earliest in the buffer (longest name on a tie), as a plain
//     substring; a buffer ending in a proper prefix of any declared name
//     waits for more text;
//   - the ARGUMENTS are the first balanced {...} in the buffer that
//     encoding/json accepts (braces counted outside "..." strings, a
//     backslash skipping the next byte everywhere); an object with a "name"
//     key gives its "arguments", else its "parameters" (an object, or a
//     string holding a JSON object), else no call; an object without "name"
//     gives the value under the tool's name, else the first nested object
//     found that way, else the whole object;
//   - a name without acceptable arguments yields no call and, since the
//     buffer is not advanced, blocks every later call in the output;
//   - closing tags are never looked for.
type callScanner struct {
	tag      string
	tools    Tools
	calling  bool // the tag has been seen
	finished bool // "{"/"[" tags only: the object or array is complete
	buf      []byte
	count    int
}

func (p *callScanner) add(text string) (calls []extractedCall, content string) {
	if p.finished {
		return nil, text
	}
	p.buf = append(p.buf, text...)
	if !p.calling {
		at, whole := p.locateTag()
		if at < 0 {
			content, p.buf = string(p.buf), nil
		} else {
			content, p.buf = string(p.buf[:at]), p.buf[at:]
		}
		// With a bare "{" or "[" tag, calls are only looked for when the
		// output starts with one.
		if (p.tag == "{" || p.tag == "[") && strings.TrimSpace(content) != "" {
			p.finished = true
			return nil, content + string(p.buf)
		}
		if !whole {
			return nil, content
		}
		p.calling = true
	}
	for {
		call, ok := p.next()
		if !ok {
			break
		}
		calls = append(calls, call)
	}
	if p.balanced() {
		p.finished = true
		content, p.buf = string(p.buf), nil
	}
	return calls, content
}

// locateTag: the tag's index and true; or the start of a partial tag at the
// end of the buffer and false; or -1.
func (p *callScanner) locateTag() (int, bool) {
	if i := bytes.Index(p.buf, []byte(p.tag)); i >= 0 {
		return i, true
	}
	for k := len(p.tag); k > 0; k-- {
		if k <= len(p.buf) && bytes.HasSuffix(p.buf, []byte(p.tag[:k])) {
			return len(p.buf) - k, false
		}
	}
	return -1, false
}

func (p *callScanner) next() (extractedCall, bool) {
	tool, nameEnd := p.matchTool()
	if tool == nil {
		return extractedCall{}, false
	}
	args, objEnd := p.arguments(tool.Function.Name)
	if args == nil {
		return extractedCall{}, false
	}
	end := nameEnd
	if objEnd > end {
		end = objEnd
	}
	call := extractedCall{Index: p.count, Name: tool.Function.Name, Arguments: args}
	p.count++
	p.buf = p.buf[end:]
	return call, true
}

func (p *callScanner) matchTool() (*Tool, int) {
	if len(p.buf) == 0 {
		return nil, 0
	}
	longest := 0
	for _, t := range p.tools {
		if n := len(t.Function.Name); n > longest {
			longest = n
		}
	}
	// A tail that could still grow into a declared name: wait for more text.
	for k := 1; k <= longest && k <= len(p.buf); k++ {
		tail := p.buf[len(p.buf)-k:]
		for _, t := range p.tools {
			if name := []byte(t.Function.Name); len(tail) < len(name) && bytes.HasPrefix(name, tail) {
				return nil, 0
			}
		}
	}
	var best *Tool
	bestAt := -1
	for i := range p.tools {
		name := p.tools[i].Function.Name
		at := bytes.Index(p.buf, []byte(name))
		if at < 0 {
			continue
		}
		if best == nil || at < bestAt || (at == bestAt && len(name) > len(best.Function.Name)) {
			best, bestAt = &p.tools[i], at
		}
	}
	if best == nil {
		return nil, 0
	}
	return best, bestAt + len(best.Function.Name)
}

// arguments returns the arguments of the first acceptable object in the
// buffer and the index of its closing brace (as Ollama does: the end used to
// advance the buffer is that index, not one past it).
func (p *callScanner) arguments(toolName string) (map[string]any, int) {
	depth, start := 0, -1
	inString, escaped := false, false
	for i, c := range p.buf {
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{':
			if depth == 0 {
				start = i
			}
			depth++
		case c == '}':
			depth--
			if depth == 0 && start >= 0 {
				var obj map[string]any
				if err := json.Unmarshal(p.buf[start:i+1], &obj); err != nil {
					start = -1 // not JSON: keep scanning after it
					continue
				}
				if args, ok := argumentsIn(obj, toolName); ok {
					return args, i
				}
				return obj, i
			}
			if depth < 0 {
				depth = 0
			}
		}
	}
	return nil, 0
}

// argumentsIn: see callScanner. Ollama ranges over Go maps here, so which
// nested object wins when several qualify is random there; sorted keys make it
// deterministic here.
func argumentsIn(obj map[string]any, toolName string) (map[string]any, bool) {
	objectAt := func(key string) (map[string]any, bool) {
		switch v := obj[key].(type) {
		case map[string]any:
			return v, true
		case string:
			var m map[string]any
			if json.Unmarshal([]byte(v), &m) == nil {
				return m, true
			}
		}
		return nil, false
	}
	if _, named := obj["name"]; named {
		if m, ok := objectAt("arguments"); ok {
			return m, true
		}
		if m, ok := objectAt("parameters"); ok {
			return m, true
		}
		return nil, true
	}
	if m, ok := objectAt(toolName); ok {
		return m, true
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch child := obj[k].(type) {
		case map[string]any:
			if m, ok := argumentsIn(child, toolName); ok {
				return m, true
			}
		case []any:
			for _, item := range child {
				if o, ok := item.(map[string]any); ok {
					if m, ok := argumentsIn(o, toolName); ok {
						return m, true
					}
				}
			}
		}
	}
	return nil, false
}

// balanced: only for "{"/"[" tags, whether the buffer holds a complete
// top-level object/array (then the parser is done and the rest is content).
func (p *callScanner) balanced() bool {
	var open, closing byte
	switch p.tag {
	case "{":
		open, closing = '{', '}'
	case "[":
		open, closing = '[', ']'
	default:
		return false
	}
	depth := 0
	inString, escaped := false, false
	for _, c := range p.buf {
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == open:
			depth++
		case c == closing:
			depth--
			if depth == 0 {
				return true
			}
		}
	}
	return false
}

// leftover is what the route sends as content on the final chunk when the
// parser swallowed everything: nothing, unless the tag is "{"/"[" and no call
// was found.
func (p *callScanner) leftover() string {
	if p.count > 0 || (p.tag != "{" && p.tag != "[") {
		return ""
	}
	return string(p.buf)
}

// chatReply is the non-streamed /api/chat message (writeChatResponse sums
// the streamed chunks), plus calls the route discarded.
type chatReply struct {
	Thinking  string          `json:"thinking"`
	Content   string          `json:"content"`
	ToolCalls []extractedCall `json:"tool_calls"`
	// Calls the tool parser returned in a chunk that also returned content:
	// the route keeps the content and drops these calls.
	Dropped []extractedCall `json:"dropped_tool_calls"`
}

// replyFor runs the chunks through the route's completion callback; a last
// empty chunk stands for the runner's final "done" response.
func replyFor(chunks []string, tag, openTag, closeTag string, thinkOn, promptOpensThink bool, tools Tools) chatReply {
	var thinker *thinkSplitter
	if thinkOn && openTag != "" && closeTag != "" {
		thinker = &thinkSplitter{open: openTag, close: closeTag}
		if promptOpensThink {
			thinker.feed(openTag)
		}
	}
	var scanner *callScanner
	if len(tools) > 0 {
		scanner = &callScanner{tag: tag, tools: tools}
	}
	reply := chatReply{ToolCalls: []extractedCall{}, Dropped: []extractedCall{}}
	var thinking, content strings.Builder
	all := append(append([]string{}, chunks...), "")
	for n, chunk := range all {
		done := n == len(all)-1
		msgThinking, msgContent := "", chunk
		var msgCalls []extractedCall
		if thinker != nil {
			msgThinking, msgContent = thinker.feed(chunk)
			if msgThinking == "" && msgContent == "" && !done {
				continue // still undecided: nothing is sent
			}
		}
		if scanner != nil {
			calls, text := scanner.add(msgContent)
			switch {
			case text != "":
				msgContent = text
				reply.Dropped = append(reply.Dropped, calls...)
			case len(calls) > 0:
				msgCalls, msgContent = calls, ""
			case msgThinking != "":
				// sent as it is: msgContent keeps the text given to the parser
			default:
				if !done {
					continue
				}
				msgContent = scanner.leftover()
			}
		}
		thinking.WriteString(msgThinking)
		content.WriteString(msgContent)
		reply.ToolCalls = append(reply.ToolCalls, msgCalls...)
	}
	reply.Thinking, reply.Content = thinking.String(), content.String()
	return reply
}

// Chunkings. The runner (llama-server, streaming) hands the route one token's
// text per chunk; "tokens" approximates that: the special tags whole, other
// text cut into pre-tokenizer-like pieces (words with a leading space, single
// digits, punctuation runs, whitespace runs). BPE may cut finer; "runes" is
// the finest possible cut, N cuts every N runes, "whole" sends one chunk.

var tokenLikeSpecials = []string{
	"<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>",
	"</tool_response>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
}

func chunkText(s string, spec any) ([]string, error) {
	switch v := spec.(type) {
	case string:
		switch v {
		case "whole":
			if s == "" {
				return nil, nil
			}
			return []string{s}, nil
		case "runes":
			return runePieces(s, 1), nil
		case "tokens":
			return tokenLikePieces(s), nil
		}
	case float64:
		if v >= 1 && v == float64(int(v)) {
			return runePieces(s, int(v)), nil
		}
	}
	return nil, fmt.Errorf(`bad chunking %v (want "tokens", "runes", "whole" or a positive integer)`, spec)
}

func runePieces(s string, n int) []string {
	var out []string
	r := []rune(s)
	for i := 0; i < len(r); i += n {
		j := i + n
		if j > len(r) {
			j = len(r)
		}
		out = append(out, string(r[i:j]))
	}
	return out
}

func tokenLikePieces(s string) []string {
	var out []string
	r := []rune(s)
	special := func(i int) int { // length in runes of a special tag at i, or 0
		for _, tag := range tokenLikeSpecials {
			t := []rune(tag)
			if i+len(t) <= len(r) && string(r[i:i+len(t)]) == tag {
				return len(t)
			}
		}
		return 0
	}
	isPunct := func(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) && !unicode.IsSpace(c) }
	for i := 0; i < len(r); {
		if n := special(i); n > 0 {
			out = append(out, string(r[i:i+n]))
			i += n
			continue
		}
		j := i
		c := r[i]
		// A single space joins the word or punctuation run after it.
		if c == ' ' && i+1 < len(r) && !unicode.IsSpace(r[i+1]) && special(i+1) == 0 && !unicode.IsDigit(r[i+1]) {
			j++
			c = r[j]
		}
		switch {
		case unicode.IsLetter(c):
			for j < len(r) && unicode.IsLetter(r[j]) {
				j++
			}
		case unicode.IsDigit(c):
			j++
		case unicode.IsSpace(c):
			for j < len(r) && unicode.IsSpace(r[j]) {
				j++
			}
			// leave a last space to the word that follows it
			if j-i > 1 && j < len(r) && r[j-1] == ' ' && !unicode.IsSpace(r[j]) {
				j--
			}
		default:
			for j < len(r) && isPunct(r[j]) && (j == i || special(j) == 0) {
				j++
			}
			for j < len(r) && (r[j] == '\n' || r[j] == '\r') {
				j++
			}
		}
		out = append(out, string(r[i:j]))
		i = j
	}
	return out
}

// extractRequest is the "extract" member of a request.
type extractRequest struct {
	// The model's raw output, as the runner generated it.
	Output string `json:"output"`
	// Stop strings (PARAMETER stop): the runner ends generation at the first
	// one and sends neither it nor anything after it.
	Stop []string `json:"stop"`
	// Chunkings to stream the output in (default ["tokens"]).
	Chunkings []any `json:"chunkings"`
}

func extract(t *template.Template, msgs []Message, tools Tools, think *ThinkValue, x *extractRequest) (map[string]any, error) {
	openTag, closeTag := thinkingTags(t)
	thinkingCapable := openTag != "" && closeTag != ""
	// ChatHandler: a thinking-capable model gets think=true when the request
	// leaves it out; asking a model without that capability to think fails.
	if think == nil && thinkingCapable {
		think = &ThinkValue{Value: true}
	}
	if think != nil && think.Bool() && !thinkingCapable {
		return nil, errors.New("think requested, but Ollama infers no thinking tags from this template (it would answer 400: model does not support thinking)")
	}
	if len(msgs) == 0 {
		return nil, errors.New(`bad request: "extract" needs "messages" (Ollama renders the prompt to see whether it opens the thinking block)`)
	}
	var prompt bytes.Buffer
	if err := render(&prompt, t, msgs, tools, think); err != nil {
		return nil, fmt.Errorf("template execution failed: %w", err)
	}
	thinkOn := think != nil && think.Bool()
	opens := openTag != "" && strings.HasSuffix(strings.TrimSpace(prompt.String()), openTag)

	output := x.Output
	for _, stop := range x.Stop {
		if stop == "" {
			continue
		}
		if i := strings.Index(output, stop); i >= 0 {
			output = output[:i]
		}
	}
	tag := toolCallTag(t)
	specs := x.Chunkings
	if len(specs) == 0 {
		specs = []any{"tokens"}
	}
	replies := make([]map[string]any, 0, len(specs))
	for _, spec := range specs {
		chunks, err := chunkText(output, spec)
		if err != nil {
			return nil, err
		}
		reply := replyFor(chunks, tag, openTag, closeTag, thinkOn, opens, tools)
		replies = append(replies, map[string]any{"chunking": spec, "chunks": len(chunks), "reply": reply})
	}
	return map[string]any{
		"tool_call_tag":      tag,
		"thinking_tags":      []string{openTag, closeTag},
		"think":              thinkOn,
		"prompt_opens_think": opens,
		"tool_parser":        len(tools) > 0,
		"generated":          output,
		"replies":            replies,
	}, nil
}

// ---------------------------------------------------------------------------
// The request.

type request struct {
	Template            string          `json:"template"`
	Messages            json.RawMessage `json:"messages"`
	Tools               json.RawMessage `json:"tools"`
	Think               json.RawMessage `json:"think"`
	AddGenerationPrompt *bool           `json:"add_generation_prompt"`
	Inspect             bool            `json:"inspect"`
	Extract             *extractRequest `json:"extract"`
	// Modelfile: parse a Modelfile as `ollama create -f` does (modelfile.go); no template.
	Modelfile *modelfileRequest `json:"modelfile"`
}

func isNull(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	return s == "" || s == "null"
}

func run(stdin io.Reader, stdout io.Writer) error {
	input, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	var req request
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields() // top level only: typos in the request are errors
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("bad request JSON: %w", err)
	}
	if req.Modelfile != nil {
		return runModelfile(req.Modelfile, stdout)
	}
	if req.Template == "" {
		return errors.New(`bad request: "template" is missing or empty`)
	}

	t, vars, err := parseTemplate(req.Template)
	if err != nil {
		return fmt.Errorf("template does not parse: %w", err)
	}
	usesMessages := false
	for _, v := range vars {
		usesMessages = usesMessages || v == "messages"
	}

	if req.Inspect {
		open, closing := thinkingTags(t)
		report := map[string]any{
			"tool_call_tag": toolCallTag(t),
			"thinking_tags": []string{open, closing},
			"vars":          vars,
		}
		b, err := json.Marshal(report)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	if !usesMessages {
		return errors.New("template does not use .Messages; Ollama's legacy .Prompt/.Response path is not mirrored here")
	}

	// Messages and tools decode leniently, as in Ollama: unknown keys are dropped.
	var msgs []Message
	if !isNull(req.Messages) {
		if err := json.Unmarshal(req.Messages, &msgs); err != nil {
			return fmt.Errorf("bad messages: %w", err)
		}
	}
	var tools Tools
	if !isNull(req.Tools) {
		if err := json.Unmarshal(req.Tools, &tools); err != nil {
			return fmt.Errorf("bad tools: %w", err)
		}
	}
	var think *ThinkValue
	if !isNull(req.Think) {
		think = &ThinkValue{}
		if err := json.Unmarshal(req.Think, think); err != nil {
			return fmt.Errorf("bad think: %w", err)
		}
	}
	if req.AddGenerationPrompt != nil && len(msgs) > 0 {
		// /api/chat has no such flag: chat templates (ours included) open the
		// assistant turn exactly when the last message is not the assistant's.
		opens := msgs[len(msgs)-1].Role != "assistant"
		if *req.AddGenerationPrompt != opens {
			return fmt.Errorf("add_generation_prompt=%v cannot be expressed through Ollama: /api/chat has no such flag, and the template opens a new assistant turn exactly when the last message is not the assistant's (its role here is %q)", *req.AddGenerationPrompt, msgs[len(msgs)-1].Role)
		}
	}

	if req.Extract != nil {
		report, err := extract(t, msgs, tools, think, req.Extract)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(report)
	}

	var out bytes.Buffer
	if err := render(&out, t, msgs, tools, think); err != nil {
		return fmt.Errorf("template execution failed: %w", err)
	}
	_, err = stdout.Write(out.Bytes())
	return err
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ollama-render:", err)
		os.Exit(1)
	}
}
