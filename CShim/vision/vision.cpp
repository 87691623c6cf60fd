// OpenCV shim: image decode/encode, resize, colour conversion, drawing. No libtorch here.
#include "ghm_vision.h"
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {
thread_local std::string last_error;

// A NULL pointer or handle argument; guard() reports it as "<entry point>: <argument> is NULL" (as the torch shim).
struct null_argument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Runs body; converts every exception into a status and the thread-local error message. fn is the entry point's
// name: call it as guard(__func__, [&] { ... }).
template <typename F> int guard(const char *fn, F &&body) {
  try {
    body();
    return 0;
  } catch (const null_argument &e) {
    last_error = std::string(fn) + ": " + e.what();
  } catch (const cv::Exception &e) {
    last_error = e.what();
  } catch (const std::exception &e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return 1;
}

// Argument checks, used through ARG(x) so that the error names the argument as it is spelled in the signature:
// ARG(img) is the cv::Mat of a non-NULL image handle, ARG(buf) the vector of a non-NULL buffer handle, ARG(p) a
// pointer that must not be NULL. Out-pointers are checked before any result is computed or written.
cv::Mat &arg(gv_image h, const char *name) {
  if (!h.ptr) throw null_argument(std::string(name) + " is a NULL image handle");
  return *static_cast<cv::Mat *>(h.ptr);
}
std::vector<uint8_t> &arg(gv_buffer h, const char *name) {
  if (!h.ptr) throw null_argument(std::string(name) + " is a NULL buffer handle");
  return *static_cast<std::vector<uint8_t> *>(h.ptr);
}
template <typename P> P *arg(P *p, const char *name) {
  if (!p) throw null_argument(std::string(name) + " is NULL");
  return p;
}
#define ARG(x) arg((x), #x)

// Writes a new image handle (owned by the caller) to an out-pointer; pass it as put(ARG(out), m).
void put(gv_image *out, cv::Mat m) {
  if (!out) throw null_argument("an output pointer is NULL");  // a backstop: callers check with ARG(out)
  out->ptr = new cv::Mat(std::move(m));
}

int read_flag(int32_t flags) {
  switch (flags) {
  case 0: return cv::IMREAD_COLOR;
  case 1: return cv::IMREAD_GRAYSCALE;
  case 2: return cv::IMREAD_UNCHANGED;
  default: throw std::invalid_argument("bad read flags " + std::to_string(flags));
  }
}

void check_u8(const cv::Mat &m) {
  if (m.depth() != CV_8U) throw std::invalid_argument("only 8-bit images are supported");
}
} // namespace

extern "C" {

// Each function-pointer type of the header matches its entry point's declaration (which the definitions below match).
#define GV_FN_TYPE(f) static_assert(std::is_same_v<decltype(&f), f##_fn>, #f "_fn differs from the declaration of " #f);
GV_FN_TYPE(gv_last_error)
GV_FN_TYPE(gv_version)
GV_FN_TYPE(gv_set_num_threads)
GV_FN_TYPE(gv_free)
GV_FN_TYPE(gv_buffer_free)
GV_FN_TYPE(gv_buffer_data)
GV_FN_TYPE(gv_imread)
GV_FN_TYPE(gv_imdecode)
GV_FN_TYPE(gv_imencode)
GV_FN_TYPE(gv_imwrite)
GV_FN_TYPE(gv_from_data)
GV_FN_TYPE(gv_info)
GV_FN_TYPE(gv_read)
GV_FN_TYPE(gv_clone)
GV_FN_TYPE(gv_resize)
GV_FN_TYPE(gv_cvt_color)
GV_FN_TYPE(gv_flip)
GV_FN_TYPE(gv_rectangle)
GV_FN_TYPE(gv_put_text)
GV_FN_TYPE(gv_text_size)
#undef GV_FN_TYPE

const char *gv_last_error(void) { return last_error.c_str(); }

int gv_version(char *buf, size_t cap) {
  return guard(__func__, [&] {
    ARG(buf);
    std::string v = CV_VERSION;
    if (cap < v.size() + 1) throw std::invalid_argument("buffer too small");
    std::memcpy(buf, v.c_str(), v.size() + 1);
  });
}
int gv_set_num_threads(int32_t n) { return guard(__func__, [&] { cv::setNumThreads(n); }); }

int gv_free(gv_image img) { return guard(__func__, [&] { delete &ARG(img); }); }
int gv_buffer_free(gv_buffer buf) { return guard(__func__, [&] { delete &ARG(buf); }); }
int gv_buffer_data(gv_buffer buf, const uint8_t **data, size_t *size) {
  return guard(__func__, [&] {
    auto &v = ARG(buf);
    ARG(data);
    ARG(size);
    *data = v.data();
    *size = v.size();
  });
}

int gv_imread(const char *path, int32_t flags, gv_image *out) {
  return guard(__func__, [&] {
    ARG(path);
    ARG(out);
    cv::Mat m = cv::imread(path, read_flag(flags));
    if (m.empty()) throw std::runtime_error(std::string("cannot read image '") + path + "' (missing, unreadable or not an image)");
    put(out, m);
  });
}
int gv_imdecode(const uint8_t *data, size_t size, int32_t flags, gv_image *out) {
  return guard(__func__, [&] {
    ARG(out);
    if (size == 0) throw std::invalid_argument("empty image data");
    cv::Mat raw(1, static_cast<int>(size), CV_8U, const_cast<uint8_t *>(ARG(data)));
    cv::Mat m = cv::imdecode(raw, read_flag(flags));
    if (m.empty()) throw std::runtime_error("cannot decode image data (corrupt or unsupported format)");
    put(out, m);
  });
}
int gv_imencode(gv_image img, const char *ext, int32_t quality, gv_buffer *out) {
  return guard(__func__, [&] {
    auto &m = ARG(img);
    ARG(ext);
    ARG(out);
    std::vector<int> params;
    if (quality >= 0) params = {cv::IMWRITE_JPEG_QUALITY, quality};
    auto v = std::make_unique<std::vector<uint8_t>>();
    if (!cv::imencode(ext, m, *v, params)) throw std::runtime_error(std::string("cannot encode image as ") + ext);
    out->ptr = v.release();
  });
}
int gv_imwrite(gv_image img, const char *path) {
  return guard(__func__, [&] {
    auto &m = ARG(img);
    ARG(path);
    if (!cv::imwrite(path, m)) throw std::runtime_error(std::string("cannot write image '") + path + "'");
  });
}

int gv_from_data(const uint8_t *data, int32_t h, int32_t w, int32_t c, gv_image *out) {
  return guard(__func__, [&] {
    ARG(data);
    ARG(out);
    if (h <= 0 || w <= 0 || (c != 1 && c != 3 && c != 4)) throw std::invalid_argument("bad image size");
    cv::Mat m(h, w, CV_8UC(c));
    std::memcpy(m.data, data, static_cast<size_t>(h) * w * c);
    put(out, m);
  });
}
int gv_info(gv_image img, int32_t *h, int32_t *w, int32_t *c) {
  return guard(__func__, [&] {
    auto &m = ARG(img);
    ARG(h);
    ARG(w);
    ARG(c);
    *h = m.rows;
    *w = m.cols;
    *c = m.channels();
  });
}
int gv_read(gv_image img, uint8_t *dst, size_t nbytes) {
  return guard(__func__, [&] {
    auto &m = ARG(img);
    check_u8(m);
    size_t row = static_cast<size_t>(m.cols) * m.channels();
    if (nbytes != row * m.rows) throw std::invalid_argument("read buffer size does not match the image");
    if (nbytes) ARG(dst);
    for (int y = 0; y < m.rows; ++y) std::memcpy(dst + y * row, m.ptr<uint8_t>(y), row);
  });
}
int gv_clone(gv_image img, gv_image *out) { return guard(__func__, [&] { put(ARG(out), ARG(img).clone()); }); }

int gv_resize(gv_image img, int32_t w, int32_t h, int32_t interpolation, gv_image *out) {
  return guard(__func__, [&] {
    auto &m = ARG(img);
    ARG(out);
    if (w <= 0 || h <= 0) throw std::invalid_argument("resize to a non-positive size");
    cv::Mat r;
    cv::resize(m, r, cv::Size(w, h), 0, 0, interpolation);
    put(out, r);
  });
}
int gv_cvt_color(gv_image img, int32_t code, gv_image *out) {
  return guard(__func__, [&] {
    auto &m = ARG(img);
    ARG(out);
    cv::Mat r;
    cv::cvtColor(m, r, code);
    put(out, r);
  });
}
int gv_flip(gv_image img, int32_t code, gv_image *out) {
  return guard(__func__, [&] {
    auto &m = ARG(img);
    ARG(out);
    cv::Mat r;
    cv::flip(m, r, code);
    put(out, r);
  });
}

int gv_rectangle(gv_image img, int32_t x1, int32_t y1, int32_t x2, int32_t y2, int32_t b, int32_t g, int32_t r,
                 int32_t thickness) {
  return guard(__func__, [&] {
    cv::rectangle(ARG(img), cv::Point(x1, y1), cv::Point(x2, y2), cv::Scalar(b, g, r), thickness, cv::LINE_AA);
  });
}
int gv_put_text(gv_image img, const char *text, int32_t x, int32_t y, double scale, int32_t b, int32_t g, int32_t r,
                int32_t thickness) {
  return guard(__func__, [&] {
    auto &m = ARG(img);
    ARG(text);
    cv::putText(m, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(b, g, r), thickness, cv::LINE_AA);
  });
}
int gv_text_size(const char *text, double scale, int32_t thickness, int32_t *w, int32_t *h, int32_t *baseline) {
  return guard(__func__, [&] {
    ARG(text);
    ARG(w);
    ARG(h);
    ARG(baseline);
    int base = 0;
    auto s = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &base);
    *w = s.width;
    *h = s.height;
    *baseline = base;
  });
}

} // extern "C"
