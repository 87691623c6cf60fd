/* C API over OpenCV image functions for the GHM Swift package. Same rules as ghm_torch.h: every call returns 0 on
 * success, non-zero on failure with the message in gv_last_error(); handles written to out-pointers are owned by the
 * caller (gv_free / gv_buffer_free); a NULL handle or pointer argument is an error whose message names the function
 * and the argument ("gv_info: w is NULL"), never a crash. Images are 8-bit, 1 or 3 channels, BGR order. */
#ifndef GHM_VISION_H
#define GHM_VISION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gv_image { void *ptr; } gv_image;
typedef struct gv_buffer { void *ptr; } gv_buffer;

const char *gv_last_error(void);
int gv_version(char *buf, size_t cap);
int gv_set_num_threads(int32_t n);

int gv_free(gv_image img);
int gv_buffer_free(gv_buffer buf);
int gv_buffer_data(gv_buffer buf, const uint8_t **data, size_t *size);

/* flags: 0 colour (BGR, 3 channels, like cv2.IMREAD_COLOR), 1 greyscale, 2 unchanged */
int gv_imread(const char *path, int32_t flags, gv_image *out);
int gv_imdecode(const uint8_t *data, size_t size, int32_t flags, gv_image *out);
/* ext such as ".jpg" or ".png"; quality 0-100 for JPEG (-1 default) */
int gv_imencode(gv_image img, const char *ext, int32_t quality, gv_buffer *out);
int gv_imwrite(gv_image img, const char *path);

int gv_from_data(const uint8_t *data, int32_t h, int32_t w, int32_t c, gv_image *out);
int gv_info(gv_image img, int32_t *h, int32_t *w, int32_t *c);
/* copies h*w*c bytes, row-major HWC */
int gv_read(gv_image img, uint8_t *dst, size_t nbytes);
int gv_clone(gv_image img, gv_image *out);

/* interpolation: OpenCV codes (0 nearest, 1 linear, 2 cubic, 3 area) */
int gv_resize(gv_image img, int32_t w, int32_t h, int32_t interpolation, gv_image *out);
/* code: OpenCV colour-conversion code (e.g. 4 = COLOR_BGR2RGB) */
int gv_cvt_color(gv_image img, int32_t code, gv_image *out);
/* code: 1 horizontal, 0 vertical, -1 both */
int gv_flip(gv_image img, int32_t code, gv_image *out);

/* drawing, in place; colours are B, G, R */
int gv_rectangle(gv_image img, int32_t x1, int32_t y1, int32_t x2, int32_t y2, int32_t b, int32_t g, int32_t r,
                 int32_t thickness);
int gv_put_text(gv_image img, const char *text, int32_t x, int32_t y, double scale, int32_t b, int32_t g, int32_t r,
                int32_t thickness);
int gv_text_size(const char *text, double scale, int32_t thickness, int32_t *w, int32_t *h, int32_t *baseline);

/* Function-pointer types of the entry points above, one per function, for callers that load the library with dlopen
 * (the Swift Imaging module does, so that the tool starts without OpenCV): with these types a signature change above
 * is a compile error in the caller instead of a silent ABI mismatch. vision.cpp checks each against its declaration. */
typedef const char *(*gv_last_error_fn)(void);
typedef int (*gv_version_fn)(char *buf, size_t cap);
typedef int (*gv_set_num_threads_fn)(int32_t n);
typedef int (*gv_free_fn)(gv_image img);
typedef int (*gv_buffer_free_fn)(gv_buffer buf);
typedef int (*gv_buffer_data_fn)(gv_buffer buf, const uint8_t **data, size_t *size);
typedef int (*gv_imread_fn)(const char *path, int32_t flags, gv_image *out);
typedef int (*gv_imdecode_fn)(const uint8_t *data, size_t size, int32_t flags, gv_image *out);
typedef int (*gv_imencode_fn)(gv_image img, const char *ext, int32_t quality, gv_buffer *out);
typedef int (*gv_imwrite_fn)(gv_image img, const char *path);
typedef int (*gv_from_data_fn)(const uint8_t *data, int32_t h, int32_t w, int32_t c, gv_image *out);
typedef int (*gv_info_fn)(gv_image img, int32_t *h, int32_t *w, int32_t *c);
typedef int (*gv_read_fn)(gv_image img, uint8_t *dst, size_t nbytes);
typedef int (*gv_clone_fn)(gv_image img, gv_image *out);
typedef int (*gv_resize_fn)(gv_image img, int32_t w, int32_t h, int32_t interpolation, gv_image *out);
typedef int (*gv_cvt_color_fn)(gv_image img, int32_t code, gv_image *out);
typedef int (*gv_flip_fn)(gv_image img, int32_t code, gv_image *out);
typedef int (*gv_rectangle_fn)(gv_image img, int32_t x1, int32_t y1, int32_t x2, int32_t y2, int32_t b, int32_t g,
                               int32_t r, int32_t thickness);
typedef int (*gv_put_text_fn)(gv_image img, const char *text, int32_t x, int32_t y, double scale, int32_t b, int32_t g,
                              int32_t r, int32_t thickness);
typedef int (*gv_text_size_fn)(const char *text, double scale, int32_t thickness, int32_t *w, int32_t *h,
                               int32_t *baseline);

#ifdef __cplusplus
}
#endif
#endif
