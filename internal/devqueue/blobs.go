package devqueue

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// blobPrefix is where devqueue stands in for S3: s3 artifacts are uploaded
// to and downloaded from <RootURL>/_devqueue/blobs/<token>, where the token
// is random (256 bits) and so as unguessable as a signed S3 URL.
const blobPrefix = "/_devqueue/blobs/"

// maxBlob bounds one uploaded artifact.
const maxBlob = 1 << 30

// blob is uploaded artifact content with the headers S3 would keep.
type blob struct {
	data            []byte
	contentType     string
	contentEncoding string
}

// blobRef is what a token grants: PUT (upload) or GET (download).
type blobRef struct {
	art     *artifact
	put     bool
	expires time.Time // upload tokens only
}

func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, blobPrefix)
	s.mu.Lock()
	ref := s.blobs[token]
	s.mu.Unlock()
	if ref == nil {
		http.Error(w, "NoSuchKey: unknown or expired artifact URL", http.StatusNotFound)
		return
	}
	switch {
	case ref.put && r.Method == http.MethodPut:
		if s.now().After(ref.expires) {
			http.Error(w, "AccessDenied: upload URL expired; call createArtifact again for a fresh putUrl", http.StatusForbidden)
			return
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, maxBlob+1))
		if err != nil {
			http.Error(w, "could not read upload: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(data) > maxBlob {
			http.Error(w, "EntityTooLarge: devqueue keeps artifacts of at most 1 GiB", http.StatusRequestEntityTooLarge)
			return
		}
		b := &blob{data: data, contentType: r.Header.Get("Content-Type"), contentEncoding: r.Header.Get("Content-Encoding")}
		s.mu.Lock()
		ref.art.blob = b
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case !ref.put && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.mu.Lock()
		b := ref.art.blob
		s.mu.Unlock()
		if b == nil {
			http.Error(w, "NoSuchKey: the artifact has not been uploaded", http.StatusNotFound)
			return
		}
		if b.contentType != "" {
			w.Header().Set("Content-Type", b.contentType)
		}
		if b.contentEncoding != "" {
			w.Header().Set("Content-Encoding", b.contentEncoding)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b.data)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(b.data)
		}
	default:
		http.Error(w, "MethodNotAllowed", http.StatusMethodNotAllowed)
	}
}
