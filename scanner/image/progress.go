package image

import (
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// withProgress wraps img so that report hears when each layer starts
// streaming. report may be called from several goroutines at once.
func withProgress(img v1.Image, verb string, report func(string)) v1.Image {
	return &progressImage{Image: img, verb: verb, report: report}
}

type progressImage struct {
	v1.Image
	verb   string
	report func(string)

	once   sync.Once
	layers []v1.Layer
	err    error
}

func (p *progressImage) Layers() ([]v1.Layer, error) {
	p.once.Do(func() {
		ls, err := p.Image.Layers()
		if err != nil {
			p.err = err
			return
		}
		p.layers = make([]v1.Layer, len(ls))
		for i, l := range ls {
			p.layers[i] = &progressLayer{Layer: l, report: p.report,
				what: fmt.Sprintf("%s layer %d/%d", p.verb, i+1, len(ls))}
		}
	})
	return p.layers, p.err
}

func (p *progressImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	return p.find(h, v1.Layer.Digest, p.Image.LayerByDigest)
}

func (p *progressImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	return p.find(h, v1.Layer.DiffID, p.Image.LayerByDiffID)
}

func (p *progressImage) find(h v1.Hash, id func(v1.Layer) (v1.Hash, error), fallback func(v1.Hash) (v1.Layer, error)) (v1.Layer, error) {
	ls, err := p.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		if got, err := id(l); err == nil && got == h {
			return l, nil
		}
	}
	return fallback(h) // the config blob, say
}

type progressLayer struct {
	v1.Layer
	what   string
	report func(string)
	once   sync.Once
}

func (l *progressLayer) started() {
	// Only the position: a layer's digest or size can cost a full
	// compression pass (an uncompressed docker save layer).
	l.once.Do(func() { l.report(l.what) })
}

func (l *progressLayer) Compressed() (io.ReadCloser, error) {
	l.started()
	return l.Layer.Compressed()
}

func (l *progressLayer) Uncompressed() (io.ReadCloser, error) {
	l.started()
	return l.Layer.Uncompressed()
}
