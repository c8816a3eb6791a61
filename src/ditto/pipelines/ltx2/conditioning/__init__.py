"""LTX-2 conditioning: the item interface and its state (item.py), image and keyframe items (image.py), what
`image=` may be with the official pixel preparation (image_input.py), control and source videos (video.py),
input audio (audio.py)."""
