package wsframe

import (
	"fmt"
	"reflect"
	"testing"
)

func TestParseExtensions(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    []Extension
		wantErr bool
	}{
		{name: "empty", values: nil, want: nil},
		{name: "bare", values: []string{"permessage-deflate"},
			want: []Extension{{Name: "permessage-deflate"}}},
		{name: "case_and_space", values: []string{" Permessage-Deflate ;\tClient_Max_Window_Bits ; server_max_window_bits = 10 "},
			want: []Extension{{Name: "permessage-deflate", Params: []ExtensionParam{
				{Name: "client_max_window_bits"}, {Name: "server_max_window_bits", Value: "10", HasValue: true}}}}},
		{name: "quoted", values: []string{`permessage-deflate; server_max_window_bits="10"`},
			want: []Extension{{Name: "permessage-deflate", Params: []ExtensionParam{{Name: "server_max_window_bits", Value: "10", HasValue: true}}}}},
		{name: "quoted_escape", values: []string{`x; a="1\0"`},
			want: []Extension{{Name: "x", Params: []ExtensionParam{{Name: "a", Value: "10", HasValue: true}}}}},
		{name: "list_and_fields", values: []string{"a, b;x", ",,c"},
			want: []Extension{{Name: "a"}, {Name: "b", Params: []ExtensionParam{{Name: "x"}}}, {Name: "c"}}},
		{name: "quoted_not_token", values: []string{`x; a="1 0"`}, wantErr: true},
		{name: "quoted_empty", values: []string{`x; a=""`}, wantErr: true},
		{name: "quoted_open", values: []string{`x; a="10`}, wantErr: true},
		{name: "empty_value", values: []string{`x; a=`}, wantErr: true},
		{name: "empty_param", values: []string{`x;`}, wantErr: true},
		{name: "no_name", values: []string{`; a`}, wantErr: true},
		{name: "junk", values: []string{`x y`}, want: nil, wantErr: true},
		{name: "error_keeps_earlier", values: []string{`a, b c`}, want: []Extension{{Name: "a"}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseExtensions(tc.values)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.want != nil || !tc.wantErr {
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

// TestAcceptDeflate is every server-side negotiation case of RFC 7692,
// Sections 5 and 7: the response for each offer ("" when declined).
func TestAcceptDeflate(t *testing.T) {
	const pmd = "permessage-deflate"
	const none = pmd + "; server_no_context_takeover; client_no_context_takeover"
	tests := []struct {
		name     string
		offer    []string
		takeover bool // DeflatePolicy.ContextTakeover
		want     string
	}{
		{name: "no_offer", offer: nil, want: ""},
		{name: "other_extension", offer: []string{"x-webkit-deflate-frame"}, want: ""},
		{name: "plain", offer: []string{pmd}, want: none},
		{name: "plain_takeover", offer: []string{pmd}, takeover: true, want: pmd},
		{name: "chrome", offer: []string{pmd + "; client_max_window_bits"}, want: none},
		{name: "server_no_context_takeover", offer: []string{pmd + "; server_no_context_takeover"}, takeover: true,
			want: pmd + "; server_no_context_takeover"}, // Section 7.1.1.1: must answer it
		{name: "client_no_context_takeover", offer: []string{pmd + "; client_no_context_takeover"}, takeover: true,
			want: pmd + "; client_no_context_takeover"},
		{name: "server_bits_15", offer: []string{pmd + "; server_max_window_bits=15"},
			want: none + "; server_max_window_bits=15"}, // Section 7.1.2.1: answered even at 15
		{name: "client_bits_10", offer: []string{pmd + "; client_max_window_bits=10"}, want: none + "; client_max_window_bits=10"},
		{name: "quoted_bits", offer: []string{pmd + `; server_max_window_bits="9"`}, want: none + "; server_max_window_bits=9"},
		{name: "server_bits_no_value", offer: []string{pmd + "; server_max_window_bits"}, want: ""},
		{name: "bits_7", offer: []string{pmd + "; server_max_window_bits=7"}, want: ""},
		{name: "bits_16", offer: []string{pmd + "; client_max_window_bits=16"}, want: ""},
		{name: "bits_leading_zero", offer: []string{pmd + "; server_max_window_bits=09"}, want: ""},
		{name: "bits_sign", offer: []string{pmd + "; server_max_window_bits=+9"}, want: ""},
		{name: "no_takeover_with_value", offer: []string{pmd + "; server_no_context_takeover=1"}, want: ""},
		{name: "unknown_param", offer: []string{pmd + "; foo"}, want: ""},
		{name: "duplicate_param", offer: []string{pmd + "; client_max_window_bits; client_max_window_bits=10"}, want: ""},
		{name: "duplicate_flag", offer: []string{pmd + "; server_no_context_takeover; server_no_context_takeover"}, want: ""},
		{name: "first_acceptable", offer: []string{pmd + "; server_max_window_bits=7, " + pmd + "; server_max_window_bits=10, " + pmd},
			want: none + "; server_max_window_bits=10"},
		{name: "first_of_two_fields", offer: []string{"foo", pmd + "; client_max_window_bits=12", pmd},
			want: none + "; client_max_window_bits=12"},
		{name: "malformed_header", offer: []string{pmd + "; a=\"x"}, want: ""},
		{name: "name_case", offer: []string{"PerMessage-Deflate"}, want: none},
	}
	for bits := MinWindowBits; bits <= MaxWindowBits; bits++ {
		tests = append(tests,
			struct {
				name     string
				offer    []string
				takeover bool
				want     string
			}{name: fmt.Sprintf("server_bits_%d", bits), offer: []string{fmt.Sprintf(pmd+"; server_max_window_bits=%d", bits)},
				want: fmt.Sprintf(none+"; server_max_window_bits=%d", bits)},
			struct {
				name     string
				offer    []string
				takeover bool
				want     string
			}{name: fmt.Sprintf("client_bits_%d", bits), offer: []string{fmt.Sprintf(pmd+"; client_max_window_bits=%d", bits)},
				want: map[bool]string{true: none, false: fmt.Sprintf(none+"; client_max_window_bits=%d", bits)}[bits == MaxWindowBits]})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, d, ok := AcceptDeflate(tc.offer, DeflatePolicy{ContextTakeover: tc.takeover})
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("AcceptDeflate(%q) = %q, %v; want %q", tc.offer, got, ok, tc.want)
			}
			if !ok {
				return
			}
			// The client's reading of our answer is what we settled.
			cd, cok, err := CheckDeflateResponse([]string{got})
			if err != nil || !cok || cd != d {
				t.Errorf("CheckDeflateResponse(%q) = %+v, %v, %v; want %+v", got, cd, cok, err, d)
			}
		})
	}
}

// TestCheckDeflateResponse is every client-side case: what a client that
// sent DeflateOffer makes of the server's answer (RFC 7692, Section 7).
func TestCheckDeflateResponse(t *testing.T) {
	const pmd = "permessage-deflate"
	tests := []struct {
		name    string
		resp    []string
		want    Deflate
		ok      bool
		wantErr bool
	}{
		{name: "declined", resp: nil},
		{name: "plain", resp: []string{pmd}, ok: true, want: Deflate{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{name: "all", resp: []string{pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8"},
			ok: true, want: Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 9, ClientMaxWindowBits: 8}},
		{name: "not_offered", resp: []string{"x-webkit-deflate-frame"}, wantErr: true},
		{name: "two", resp: []string{pmd, pmd}, wantErr: true},
		{name: "client_bits_no_value", resp: []string{pmd + "; client_max_window_bits"}, wantErr: true},
		{name: "bits_16", resp: []string{pmd + "; server_max_window_bits=16"}, wantErr: true},
		{name: "unknown", resp: []string{pmd + "; foo=1"}, wantErr: true},
		{name: "duplicate", resp: []string{pmd + "; server_no_context_takeover; server_no_context_takeover"}, wantErr: true},
		{name: "malformed", resp: []string{pmd + ";"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := CheckDeflateResponse(tc.resp)
			if (err != nil) != tc.wantErr || ok != tc.ok || got != tc.want {
				t.Errorf("CheckDeflateResponse(%q) = %+v, %v, %v; want %+v, %v, error %v", tc.resp, got, ok, err, tc.want, tc.ok, tc.wantErr)
			}
		})
	}
}
