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
//
// Not mirrored: range-over-func/int in templates (Go >= 1.24 features of
// Ollama's toolchain; templates meant for this harness must not use them) and
// ToolPropertiesMap.All (an iter.Seq2, which Go 1.19 lacks).
//
// Input (stdin, JSON):
//
//	{"template": "...", "messages": [Ollama messages], "tools": [Ollama tools],
//	 "think": true|false|"low"|"medium"|"high"|null, "add_generation_prompt": bool,
//	 "inspect": bool}
//
// Output: the rendered prompt on stdout with nothing added, or with
// "inspect": true a JSON report of what Ollama would detect in the template.
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
// The request.

type request struct {
	Template            string          `json:"template"`
	Messages            json.RawMessage `json:"messages"`
	Tools               json.RawMessage `json:"tools"`
	Think               json.RawMessage `json:"think"`
	AddGenerationPrompt *bool           `json:"add_generation_prompt"`
	Inspect             bool            `json:"inspect"`
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
